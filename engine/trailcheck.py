"""Offline verifier of an exported case trail. Uses only the Python standard library.

    python -m engine.trailcheck trail.json        (or: python trailcheck.py trail.json)

Checks that the file is exactly the canonical serialization of its content (so any edited byte
shows), that each event's hash is the SHA-256 of its canonical content, that each event names
the hash of the one before, that sequence numbers run 1, 2, 3… without gaps, that the stated
head matches the last event, and that the case header agrees with the `case_started` event.
Exit status 0 when the trail verifies, 1 when it does not, 2 when the file cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import sys

FORMAT = "xiaowei-trail/1"


def canonical(obj) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def genesis(chain: str) -> str:
    """The `prev_hash` of the first event of a chain."""
    return hashlib.sha256(("xiaowei-genesis:" + chain).encode("utf-8")).hexdigest()


def event_hash(chain: str, seq: int, type_: str, at: str, actor: str, role: str, data, prev: str) -> str:
    """SHA-256 of the canonical JSON of an event's content and the previous hash."""
    envelope = {"chain": chain, "seq": seq, "type": type_, "at": at, "actor": actor, "role": role,
                "data": data, "prev": prev}
    return hashlib.sha256(canonical(envelope).encode("utf-8")).hexdigest()


def event_hash_text(chain: str, seq: int, type_: str, at: str, actor: str, role: str, data_text: str,
                    prev: str) -> str:
    """:func:`event_hash` for data already in canonical JSON text (same result, no re-encoding)."""
    d = json.dumps
    envelope = (f'{{"actor":{d(actor, ensure_ascii=False)},"at":{d(at)},"chain":{d(chain, ensure_ascii=False)},'
                f'"data":{data_text},"prev":{d(prev)},"role":{d(role, ensure_ascii=False)},"seq":{d(seq)},'
                f'"type":{d(type_, ensure_ascii=False)}}}')
    return hashlib.sha256(envelope.encode("utf-8")).hexdigest()


def render(trail: dict) -> str:
    """The exact text of an exported trail file."""
    return json.dumps(trail, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def verify_trail(text: str) -> list[str]:
    """Problems found in an exported trail (empty when it verifies)."""
    try:
        trail = json.loads(text)
    except ValueError as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(trail, dict) or trail.get("format") != FORMAT:
        return [f"not a {FORMAT} file"]
    problems: list[str] = []
    if render(trail) != text:
        problems.append("the file is not in canonical form: it was edited after export")
    chain = trail.get("chain", "")
    events = trail.get("events") or []
    prev = genesis(chain)
    for index, ev in enumerate(events, start=1):
        if ev.get("seq") != index:
            problems.append(f"event #{index}: sequence number {ev.get('seq')} (expected {index}): deleted, inserted or reordered")
        if ev.get("prev_hash") != prev:
            problems.append(f"event #{index}: does not link to the previous event (deleted, inserted or reordered)")
        expected = event_hash(chain, ev.get("seq"), ev.get("type"), ev.get("at"), ev.get("actor"),
                              ev.get("role"), ev.get("data"), ev.get("prev_hash"))
        if ev.get("hash") != expected:
            problems.append(f"event #{index} ({ev.get('type')}): content does not match its hash (edited)")
        prev = ev.get("hash")
    head = trail.get("head") or {}
    if head.get("seq") != len(events) or head.get("hash") != (events[-1].get("hash") if events else genesis(chain)):
        problems.append("the stated head does not match the last event (events missing at the end?)")
    case = trail.get("case") or {}
    started = next((e for e in events if e.get("type") == "case_started"), None)
    if started is None:
        problems.append("no case_started event")
    else:
        data = started.get("data") or {}
        for key in ("procedure_id", "procedure_version", "definition_hash", "tracking_code", "org"):
            if key in case and case.get(key) != data.get(key):
                problems.append(f"case header field {key!r} disagrees with the case_started event")
        if chain != f"case:{case.get('id')}":
            problems.append("case id disagrees with the chain name")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m engine.trailcheck TRAIL.json", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        print(f"cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        print(f"FAILED: {args[0]}")
        print(f"  - not valid UTF-8 at byte {exc.start}: the file was edited or damaged after export")
        return 1
    problems = verify_trail(text)
    if problems:
        print(f"FAILED: {args[0]}")
        for p in problems:
            print(f"  - {p}")
        return 1
    trail = json.loads(text)
    print(f"OK: {len(trail['events'])} events verify; head {trail['head']['hash']}")
    if any("text" in e for e in trail["events"]):
        print("  note: each event's \"text\" is its description in words, made from its data at export;"
              " it is not covered by the hashes — where they differ, the data is the record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
