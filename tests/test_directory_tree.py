"""The organization tree walk (directory.descendants): a page asks for the actor's scope several times;
the walk is read once per transaction, and a new organization is seen at once."""

from __future__ import annotations

from sqlalchemy import event

from engine.core import directory


def _counting(engine):
    seen = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_the_walk_is_read_once_per_transaction_and_grows_with_a_new_organization(xw):
    seen = _counting(xw.db.write_engine)
    with xw.db.write() as s:
        town = directory.get_org(s, "SFZ").id
        first = directory.descendants(s, [town])
        asked = len(seen)
        again = directory.descendants(s, [town])
        assert again == first and len(seen) == asked  # the same roots: nothing read again
        again.add(-1)  # the caller's set is its own
        assert -1 not in directory.descendants(s, [town])
        new = directory.add_org(s, "XINCUN", "新村", "village", "SFZ")
        grown = directory.descendants(s, [town])
        assert grown == first | {new.id}
    with xw.db.read() as s:  # another transaction walks again
        assert directory.descendants(s, [town]) == grown
