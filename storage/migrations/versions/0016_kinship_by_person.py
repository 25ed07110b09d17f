"""kinship by person, again: declarations made in the name-based register (``xiaowei kin add``) after
0010 copied it are carried into kinship by person (person_relation), since the conflict rules now
compare persons and read the name-based register only for accounts not linked to a person

Data only, idempotent: a person per cadre (linked to the account when it has none) and per declared
relative (one per name and village, the person already there when there is one), and the relation
with its declared degree when it is not there yet.

Revision ID: 0016
Revises: 0013
"""
from datetime import datetime, timezone
import re
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = "0013"
branch_labels = None
depends_on = None


def _name_key(text) -> str:
    """As engine.core.people.name_key: full-width folded (NFKC), no spaces, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).lower()


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT org_id, cadre, cadre_name, person_name, relation, degree, note, "
                                "declared_by, created_at FROM kinship ORDER BY id")).all()
    if not rows:
        return
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    person = sa.table('person', sa.column('id'), sa.column('org_id'), sa.column('name'), sa.column('name_key'),
                      sa.column('id_cipher'), sa.column('id_tail'), sa.column('phone_cipher'),
                      sa.column('created_at'), sa.column('created_by'))
    relation = sa.table('person_relation', sa.column('person_id'), sa.column('relative_id'), sa.column('relation'),
                        sa.column('degree'), sa.column('note'), sa.column('declared_by'), sa.column('created_at'))
    users = sa.table('user_account', sa.column('id'), sa.column('username'), sa.column('display_name'),
                     sa.column('person_id'))
    known: dict[tuple, int] = {}

    def person_for(org_id, name) -> int:
        key = (org_id, _name_key(name)[:100])
        if key not in known:
            found = conn.execute(sa.select(person.c.id).where(person.c.org_id == org_id, person.c.name_key == key[1])
                                 .order_by(person.c.id).limit(1)).scalar()
            if found is None:
                found = conn.execute(person.insert().values(
                    org_id=org_id, name=str(name)[:100], name_key=key[1], id_cipher="", id_tail="", phone_cipher="",
                    created_at=now, created_by="migration 0016").returning(person.c.id)).scalar()
            known[key] = found
        return known[key]

    for row in rows:
        user = conn.execute(sa.select(users.c.id, users.c.display_name, users.c.person_id)
                            .where(users.c.username == row.cadre)).first()
        if user is not None and user.person_id is not None:
            cadre = user.person_id
        else:
            cadre = person_for(row.org_id, row.cadre_name or (user.display_name if user else "") or row.cadre)
            if user is not None:
                conn.execute(users.update().where(users.c.id == user.id).values(person_id=cadre))
        relative = cadre if row.relation == "self" else person_for(row.org_id, row.person_name)
        exists = conn.execute(sa.select(sa.func.count()).select_from(relation).where(
            relation.c.person_id == cadre, relation.c.relative_id == relative,
            relation.c.relation == row.relation)).scalar()
        if not exists:
            conn.execute(relation.insert().values(person_id=cadre, relative_id=relative, relation=row.relation,
                                                  degree=row.degree, note=row.note or "",
                                                  declared_by=row.declared_by, created_at=row.created_at))


def downgrade() -> None:
    """Nothing to undo: the relations carried over stay (0010's downgrade drops the tables)."""
