"""Offline verifier of an exported case trail. Uses only the Python standard library (and the
``cryptography`` package for the checkpoint's Ed25519 signature when it is installed).

    python -m engine.trailcheck trail.json        (or: python trailcheck.py trail.json)
    python -m engine.trailcheck trail.json --key PUBLIC_KEY --checkpoint checkpoint.json

Checks that the file is exactly the canonical serialization of its content (so any edited byte
shows), that each event's hash is the SHA-256 of its canonical content, that each event names
the hash of the one before, that sequence numbers run 1, 2, 3… without gaps, that the stated
head matches the last event, and that the case header agrees with the `case_started` event.

A hash chain alone proves nothing against whoever can rewrite the database (cut the newest events
and move the head back, or rehash the whole chain). So every export also carries an **anchor**: the
district's latest signed checkpoint — a Merkle tree over the heads of every chain, in the style of
Certificate Transparency's signed tree heads (RFC 9162) — with the inclusion proof of this chain's
head. The verifier checks that the anchored event is in the trail with the anchored hash (a cut or
a rehash shows), that the inclusion proof leads to the signed root, that the signature is the
district key's (``--key``: the public key the district publishes; without ``cryptography`` the
signature is reported as not checked), and, with ``--checkpoint``, that the trail is anchored at
least as recently as a checkpoint one holds (from the public board, a receipt or the handbook).
An event whose personal data the exporter masked (its non-hashed ``masked`` key) is reported as
such: its hash is not recomputed, its links to the events before and after it are checked.
Exit status 0 when the trail verifies, 1 when it does not, 2 when the file cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import sys

FORMAT = "xiaowei-trail/1"
CHECKPOINT_FORMAT = "xiaowei-checkpoint/1"


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


# --- the checkpoint tree (RFC 9162 Merkle tree over chain heads) ------------------------------------

def leaf_bytes(chain: str, seq: int, head: str) -> bytes:
    """A leaf of the checkpoint tree: a chain's head, canonical JSON."""
    return canonical({"chain": chain, "hash": head, "seq": seq}).encode("utf-8")


def leaf_hash(chain: str, seq: int, head: str) -> str:
    return hashlib.sha256(b"\x00" + leaf_bytes(chain, seq, head)).hexdigest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 over leaf hashes (bytes); the empty tree is SHA-256 of nothing."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Bottom-up is the same tree as the recursive split: pair neighbours, carry an odd last one up.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is ``leaf`` the ``index``-th of ``size`` leaves under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does the tree of ``second`` leaves extend the tree of ``first`` leaves?"""
    if first == second:
        return first_root == second_root and not proof
    if first == 0:
        return not proof
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a subtree of the second
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


SIGNED_FIELDS = ("at", "key_id", "number", "root_hash", "tree_size")


def checkpoint_message(checkpoint: dict) -> bytes:
    """The exact bytes the district key signs: the checkpoint's fields, canonical JSON."""
    body = {k: checkpoint.get(k) for k in SIGNED_FIELDS}
    body["format"] = CHECKPOINT_FORMAT
    return canonical(body).encode("utf-8")


def key_id(public_key_hex: str) -> str:
    """The fingerprint of a public key (SHA-256 of its 32 raw bytes), as published."""
    try:
        return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()
    except (TypeError, ValueError):
        return ""


def verify_signature(checkpoint: dict) -> bool | None:
    """True/False when the ``cryptography`` package can check the Ed25519 signature; None without it."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.get("public_key") or ""))
        key.verify(bytes.fromhex(checkpoint.get("signature") or ""), checkpoint_message(checkpoint))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _hexes(items) -> list[bytes] | None:
    try:
        return [bytes.fromhex(x) for x in items]
    except (TypeError, ValueError):
        return None


def check_checkpoint(checkpoint: dict, pinned_key: str | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of a checkpoint on its own: its key and signature."""
    problems: list[str] = []
    notes: list[str] = []
    if not isinstance(checkpoint, dict):
        return ["the checkpoint is missing or malformed"], notes
    public = str(checkpoint.get("public_key") or "")
    if key_id(public) != checkpoint.get("key_id"):
        problems.append("the checkpoint's key id does not match its public key")
    if pinned_key is not None and public.lower() != pinned_key.lower():
        problems.append(f"the checkpoint was signed with key {key_id(public)[:16]}…, not the district key you gave "
                        f"({key_id(pinned_key)[:16]}…)")
    signed = verify_signature(checkpoint)
    if signed is False:
        problems.append(f"the signature of checkpoint #{checkpoint.get('number')} does not verify: forged or edited")
    elif signed is None:
        notes.append("signature NOT CHECKED: the Python package cryptography is not installed (pip install "
                     "cryptography); the hashes and the Merkle proof were checked")
    else:
        notes.append(f"signature verified: key {key_id(public)}" + ("" if pinned_key is not None else
                     " (compare it with the key the district publishes, or pass --key)"))
    return problems, notes


def verify_anchor(trail: dict, *, pinned_key: str | None = None, held: dict | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of a trail's anchor: the signed checkpoint and this chain's place in it."""
    anchor = trail.get("anchor")
    if not isinstance(anchor, dict):
        return ["the trail carries no signed checkpoint (anchor): its hashes prove only that its events link, "
                "not that none were cut or the chain rehashed"], []
    checkpoint = anchor.get("checkpoint") or {}
    problems, notes = check_checkpoint(checkpoint, pinned_key)
    chain = trail.get("chain", "")
    leaf = anchor.get("leaf") or {}
    events = trail.get("events") or []
    try:
        size = int(checkpoint.get("tree_size"))
        index = int(anchor.get("leaf_index"))
        seq = int(leaf.get("seq"))
    except (TypeError, ValueError):
        return problems + ["the anchor is malformed"], notes
    root = bytes.fromhex(checkpoint["root_hash"]) if isinstance(checkpoint.get("root_hash"), str) and \
        len(checkpoint["root_hash"]) == 64 else b""
    if leaf.get("chain") != chain:
        problems.append("the anchor names another chain")
    proof = _hexes(anchor.get("inclusion") or [])
    if proof is None or not verify_inclusion(index, size, bytes.fromhex(leaf_hash(chain, seq, str(leaf.get("hash")))),
                                             proof, root):
        problems.append("the inclusion proof does not lead to the checkpoint's root: the anchor was edited")
    if seq > len(events):
        problems.append(f"checkpoint #{checkpoint.get('number')} anchors event {seq} of this chain but the trail ends "
                        f"at event {len(events)}: events were cut (truncated) or the head moved back")
    elif seq >= 1 and events[seq - 1].get("hash") != leaf.get("hash"):
        problems.append(f"event {seq} is not the event checkpoint #{checkpoint.get('number')} anchors: the chain was "
                        "rewritten and rehashed after it was anchored")
    consistency = anchor.get("consistency")
    if isinstance(consistency, dict):
        cproof = _hexes(consistency.get("proof") or [])
        try:
            ok = cproof is not None and verify_consistency(int(consistency.get("from_size")), size,
                                                           bytes.fromhex(consistency.get("from_root")), root, cproof)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append("the consistency proof from the previous checkpoint does not verify")
    if held is not None:
        hp, hn = check_checkpoint(held, pinned_key or checkpoint.get("public_key"))
        problems.extend(f"the checkpoint you hold: {p}" for p in hp)
        try:
            held_number, held_size = int(held.get("number")), int(held.get("tree_size"))
        except (TypeError, ValueError):
            held_number, held_size = -1, -1
        if held_number == checkpoint.get("number"):
            if held.get("root_hash") != checkpoint.get("root_hash") or held_size != size:
                problems.append(f"checkpoint #{held_number} you hold differs from the trail's: one of them is forged")
        elif held_number > int(checkpoint.get("number") or 0):
            problems.append(f"the trail is anchored at checkpoint #{checkpoint.get('number')} but you hold the newer "
                            f"#{held_number}: it is NOT PROVEN complete (events after may be missing); export it again")
        else:
            c = anchor.get("consistency") or {}
            if c.get("from_size") == held_size and c.get("from_root") == held.get("root_hash"):
                notes.append(f"checkpoint #{held_number} you hold is consistent with the trail's #{checkpoint.get('number')}")
            else:
                notes.append(f"checkpoint #{held_number} you hold is older than the trail's: check their consistency "
                             f"at /public/checkpoint.json?from={held_size}")
    newer = len(events) - seq
    when = checkpoint.get("at")
    notes.insert(0, f"anchored: checkpoint #{checkpoint.get('number')} of {when} (tree of {size} heads, root "
                    f"{str(checkpoint.get('root_hash'))[:16]}…) covers events 1–{seq}"
                    + (f"; {newer} newer event(s) are chained but not yet anchored" if newer > 0 else ""))
    return problems, notes


def render(trail: dict) -> str:
    """The exact text of an exported trail file."""
    return json.dumps(trail, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def verify_trail(text: str, notes: list[str] | None = None, *, require_anchor: bool = True,
                 pinned_key: str | None = None, held: dict | None = None) -> list[str]:
    """Problems found in an exported trail (empty when it verifies); ``notes`` collects what was
    verified only in part (events with masked personal data, an unchecked signature)."""
    problems, found = check_trail(text, require_anchor=require_anchor, pinned_key=pinned_key, held=held)
    if notes is not None:
        notes.extend(found)
    return problems


def check_trail(text: str, *, require_anchor: bool = True, pinned_key: str | None = None,
                held: dict | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of an exported trail; notes say what was verified only in part (events whose
    personal data was masked, an anchor whose signature could not be checked)."""
    masked: list[str] = []
    problems = _verify_chain_of(text, masked)
    if problems and problems[0].startswith(("not valid JSON", "not a ")):
        return problems, []
    trail = json.loads(text)
    notes: list[str] = []
    if require_anchor or "anchor" in trail:
        more, notes = verify_anchor(trail, pinned_key=pinned_key, held=held)
        problems.extend(more)
    return problems, masked + notes


# What an exporter may mask (the identity of a member of the public in an event made before identities
# were sealed out of the hashed trail): the event kinds and the paths; anything else marked is refused.
_IDENTITY = ("reporter_name", "reporter_phone")  # the reporter's fields of a 码上举报 case
MASKABLE = {"objection_filed": {"data.name", "data.phone"},
            "case_started": {"data.public.reporter", *(f"data.initial.{k}" for k in _IDENTITY)},
            "step_completed": {f"data.data.{k}" for k in _IDENTITY}}


def _maskable(kind: str, path: str) -> bool:
    if path in MASKABLE.get(kind, set()):
        return True
    parts = path.split(".")  # data.changes.N.before|after of a reporter's field
    return kind == "step_completed" and len(parts) == 4 and parts[:2] == ["data", "changes"] and parts[2].isdigit() \
        and parts[3] in ("before", "after")


def _check_hash(chain: str, index: int, ev: dict, notes: list[str] | None) -> list[str]:
    """An event's content against its hash. An event marked ``masked`` (a list of the paths whose
    personal data the exporter replaced, outside the hashed content) cannot be recomputed: it is
    reported in ``notes``; its links to the events before and after it are still checked. Only the
    identity fields of the public's filings may be masked (:data:`MASKABLE`)."""
    masked = ev.get("masked")
    if masked:
        kind = str(ev.get("type"))
        if not isinstance(masked, list) or not all(isinstance(p, str) and _maskable(kind, p) for p in masked):
            return [f"event #{index} ({ev.get('type')}): a 'masked' marker on what may not be masked (edited?)"]
        if notes is not None:
            notes.append(f"event #{index} ({ev.get('type')}): personal data masked ({', '.join(masked)}); "
                         "hash not recomputed; links to its neighbours checked")
        return []
    expected = event_hash(chain, ev.get("seq"), ev.get("type"), ev.get("at"), ev.get("actor"),
                          ev.get("role"), ev.get("data"), ev.get("prev_hash"))
    if ev.get("hash") != expected:
        return [f"event #{index} ({ev.get('type')}): content does not match its hash (edited)"]
    return []


def _verify_chain_of(text: str, notes: list[str] | None = None) -> list[str]:
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
        problems.extend(_check_hash(chain, index, ev, notes))
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


USAGE = ("usage: python -m engine.trailcheck TRAIL.json [--key PUBLIC_KEY_HEX_OR_FILE] [--checkpoint FILE] "
         "[--no-anchor]")


def _read_key(value: str) -> str | None:
    text = value.strip()
    try:
        with open(text, encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError:
        pass
    if "BEGIN PUBLIC KEY" in text:  # a PEM public key: the raw key is the last 32 bytes of its DER
        import base64

        der = base64.b64decode("".join(line for line in text.splitlines() if "-----" not in line))
        text = der[-32:].hex()
    text = text.lower()
    if len(text) != 64 or any(ch not in "0123456789abcdef" for ch in text):
        return None
    return text


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options: dict[str, str] = {}
    positional: list[str] = []
    require_anchor = True
    while args:
        arg = args.pop(0)
        if arg in ("--key", "--checkpoint") and args:
            options[arg] = args.pop(0)
        elif arg == "--no-anchor":
            require_anchor = False
        elif arg.startswith("--"):
            print(USAGE, file=sys.stderr)
            return 2
        else:
            positional.append(arg)
    if len(positional) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    path = positional[0]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 2
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        print(f"FAILED: {path}")
        print(f"  - not valid UTF-8 at byte {exc.start}: the file was edited or damaged after export")
        return 1
    pinned = None
    if "--key" in options:
        pinned = _read_key(options["--key"])
        if pinned is None:
            print(f"cannot read the public key {options['--key']} (64 hex digits, a file of them, or a PEM public key)",
                  file=sys.stderr)
            return 2
    held = None
    if "--checkpoint" in options:
        try:
            with open(options["--checkpoint"], encoding="utf-8") as fh:
                held = json.load(fh)
            held = held.get("checkpoint", held) if isinstance(held, dict) else None
        except (OSError, ValueError) as exc:
            print(f"cannot read the checkpoint {options['--checkpoint']}: {exc}", file=sys.stderr)
            return 2
    problems, notes = check_trail(text, require_anchor=require_anchor, pinned_key=pinned, held=held)
    if problems:
        print(f"FAILED: {path}")
        for p in problems:
            print(f"  - {p}")
        for n in notes:
            print(f"  · {n}")
        return 1
    trail = json.loads(text)
    masked = [n for n in notes if "personal data masked" in n]
    shown = f"{len(trail['events']) - len(masked)} events verify, {len(masked)} masked" if masked else \
        f"{len(trail['events'])} events verify"
    print(f"OK: {shown}; head {trail['head']['hash']}")
    for n in notes:
        print(f"  · {n}")
    if any("text" in e for e in trail["events"]):
        print("  · each event's \"text\" is its description in words, made from its data at export; it is not"
              " covered by the hashes — where they differ, the data is the record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
