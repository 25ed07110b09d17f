"""Signed checkpoints: the audit trail anchored outside the database.

The hash chains (:mod:`engine.audit`) show any edit *inside* a chain, but their heads are columns of
the same database: whoever can write it can delete a case's newest events and move the head back, or
rewrite and rehash a whole chain. Certificate Transparency's answer (RFC 9162) closes that:

* **leaves** — at each checkpoint, every chain whose head moved since the last one (a case, or the
  'system' chain) gets a leaf ``(chain, seq, hash)`` appended to ``checkpoint_leaf``. Before a head is
  anchored, the events since its previous anchor are verified (they must extend it);
* **tree** — the leaves form an append-only Merkle tree; a checkpoint is its root over the first
  ``tree_size`` leaves, numbered, timed and **signed with the district's Ed25519 key**, which lives in
  a file outside the database (``XIAOWEI_SIGNING_KEY``); its public half is published (the public
  board, ``/public/checkpoint.json``, receipts, the handbook, ``xiaowei audit key``);
* **consistency** — each tree extends the one before (a consistency proof shows it, RFC 9162 §2.1.4);
* **inclusion** — every exported trail carries the latest checkpoint and the inclusion proof of its
  chain's head, so ``python -m engine.trailcheck`` detects a cut, a head moved back and a rehash
  offline; ``xiaowei audit verify`` checks every checkpoint, every anchor and every chain against it.

What it does not prove: events after the latest checkpoint are only chained (a checkpoint is made
every ``XIAOWEI_CHECKPOINT_MINUTES`` and before each export); and someone who holds the private key
and the database together can forge anything — keep the key with the district, not on the app's
database host (docs/security.md).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from . import audit, security_settings
from .errors import XiaoweiError
from engine.trailcheck import (
    CHECKPOINT_FORMAT, checkpoint_message, event_hash_text, genesis, key_id, leaf_hash, node_hash, tree_root,
    verify_signature,
)
from storage.models import AuditAnchor, AuditCheckpoint, AuditEvent, AuditHead, Case, CheckpointLeaf

_LOCK_ID = 0x58570001  # pg_advisory_xact_lock key: one checkpoint at a time


# --- the key ----------------------------------------------------------------------------------------

class SigningKey:
    def __init__(self, private, path: Path):
        from cryptography.hazmat.primitives import serialization

        self._private = private
        self.path = path
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()
        self.key_id = key_id(self.public_hex)

    def sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()


_key_cache: dict[tuple[str, float], SigningKey] = {}


def load_key(path: Path | None = None) -> SigningKey | None:
    """The district's signing key from its file, or None when there is no file (then no checkpoint is
    made, and exports say so). A file that is not an Ed25519 private key is an error."""
    path = Path(path or security_settings.signing_key_path())
    try:
        stat = path.stat()
    except OSError:
        return None
    cached = _key_cache.get((str(path), stat.st_mtime))
    if cached is not None:
        return cached
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise XiaoweiError(f"签名密钥文件无法读取:{path}({exc}) / the signing key file cannot be read") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise XiaoweiError(f"签名密钥须为 Ed25519 私钥:{path} / the signing key must be an Ed25519 private key")
    key = SigningKey(private, path)
    _key_cache.clear()
    _key_cache[(str(path), stat.st_mtime)] = key
    return key


def generate_key(path: Path | None = None) -> SigningKey:
    """Make a new Ed25519 key file (mode 0600, refused if the file exists) and its ``.pub`` beside it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path or security_settings.signing_key_path())
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise XiaoweiError(f"密钥文件已存在,不会覆盖:{path} / the key file exists and is not overwritten") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    key = SigningKey(private, path)
    Path(str(path) + ".pub").write_text(key.public_hex + "\n", encoding="utf-8")
    return key


def trusted_keys() -> set[str]:
    """Public keys (hex) whose checkpoints ``audit verify`` accepts: the configured key's and those in
    ``XIAOWEI_SIGNING_PUBLIC_KEYS`` (comma-separated hex or files; earlier keys after a rotation, or a
    verifier's copy of the published key)."""
    from engine.trailcheck import _read_key

    found: set[str] = set()
    try:
        key = load_key()
    except XiaoweiError:
        key = None
    if key is not None:
        found.add(key.public_hex)
    for item in security_settings.signing_public_keys():
        if item.strip():
            value = _read_key(item.strip())
            if value:
                found.add(value)
    return found


# --- the tree ---------------------------------------------------------------------------------------

def _fold(frontier: list[list]) -> bytes:
    if not frontier:
        return tree_root([])
    root = bytes.fromhex(frontier[-1][1])
    for _height, value in reversed(frontier[:-1]):
        root = node_hash(bytes.fromhex(value), root)
    return root


def _push(frontier: list[list], leaf: bytes) -> None:
    """Append a leaf to the compact range of perfect subtrees (a binary counter)."""
    frontier.append([0, leaf.hex()])
    while len(frontier) >= 2 and frontier[-1][0] == frontier[-2][0]:
        right = frontier.pop()
        left = frontier.pop()
        frontier.append([left[0] + 1, node_hash(bytes.fromhex(left[1]), bytes.fromhex(right[1])).hex()])


class Tree:
    """The levels of the tree over the first ``size`` leaves (bottom-up, an odd last node carried up:
    the same tree as RFC 9162's recursive split), for inclusion and consistency proofs."""

    def __init__(self, leaves: list[bytes]):
        self.size = len(leaves)
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            level = self.levels[-1]
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)

    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else tree_root([])

    def copy(self) -> "Tree":
        other = Tree([])
        other.size = self.size
        other.levels = [list(level) for level in self.levels]
        return other

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaves: only the nodes on the right edge change (O(k log n) hashes for k leaves)."""
        if not leaves:
            return
        start = self.size
        self.levels[0].extend(leaves)
        self.size = len(self.levels[0])
        h = 0
        while len(self.levels[h]) > 1:
            level = self.levels[h]
            if h + 1 == len(self.levels):
                self.levels.append([])
            nxt = self.levels[h + 1]
            first = start >> 1
            del nxt[first:]
            for i in range(first * 2, len(level) - 1, 2):
                nxt.append(node_hash(level[i], level[i + 1]))
            if len(level) % 2:
                nxt.append(level[-1])
            start = first
            h += 1
        del self.levels[h + 1:]

    def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` leaves (an older checkpoint's tree): the perfect subtrees of
        its binary decomposition are nodes of this tree, folded right to left (O(log n))."""
        if not 0 < size <= self.size:
            return tree_root([])
        parts = []
        start = 0
        for height in range(size.bit_length() - 1, -1, -1):
            if size & (1 << height):
                parts.append(self.levels[height][start >> height])
                start += 1 << height
        root = parts[-1]
        for part in reversed(parts[:-1]):
            root = node_hash(part, root)
        return root

    def node(self, start: int, size: int) -> bytes:
        """MTH of leaves [start, start + size): a node of this tree (start is a multiple of its width)."""
        height = (size - 1).bit_length()
        return self.levels[height][start >> height]

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 §2.1.3.1."""
        size = self.size if size is None else size

        def path(m: int, start: int, n: int) -> list[bytes]:
            if n == 1:
                return []
            k = _split(n)
            if m < k:
                return path(m, start, k) + [self.node(start + k, n - k)]
            return path(m - k, start + k, n - k) + [self.node(start, k)]

        return path(index, 0, size)

    def consistency(self, first: int) -> list[bytes]:
        """PROOF(first, D[size]) of RFC 9162 §2.1.4.1."""

        def sub(m: int, start: int, n: int, whole: bool) -> list[bytes]:
            if m == n:
                return [] if whole else [self.node(start, n)]
            k = _split(n)
            if m <= k:
                return sub(m, start, k, whole) + [self.node(start + k, n - k)]
            return sub(m - k, start + k, n - k, False) + [self.node(start, k)]

        if first <= 0 or first >= self.size:
            return []
        return sub(first, 0, self.size, True)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


_trees: dict[str, Tree] = {}
_trees_lock = threading.Lock()


def tree(session: Session, size: int) -> Tree:
    """The tree over the first ``size`` leaves. Each process keeps the largest tree it built per
    database and extends a copy of it with the leaves added since (leaves never change), so the first
    export after a checkpoint reads only the new leaves."""
    key = str(session.get_bind().url)
    with _trees_lock:
        cached = _trees.get(key)
    if cached is not None and cached.size == size:
        return cached
    if cached is not None and cached.size < size:
        hashes = session.scalars(select(CheckpointLeaf.leaf_hash).where(CheckpointLeaf.idx >= cached.size,
                                                                        CheckpointLeaf.idx < size)
                                 .order_by(CheckpointLeaf.idx)).all()
        found = cached.copy()
        found.extend([bytes.fromhex(h) for h in hashes])
    else:
        hashes = session.scalars(select(CheckpointLeaf.leaf_hash).where(CheckpointLeaf.idx < size)
                                 .order_by(CheckpointLeaf.idx)).all()
        found = Tree([bytes.fromhex(h) for h in hashes])
    with _trees_lock:
        current = _trees.get(key)
        if current is None or current.size <= found.size:
            if len(_trees) >= 8:
                _trees.clear()
            _trees[key] = found
    return found


# --- making checkpoints -------------------------------------------------------------------------------

def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.number.desc()).limit(1))


def _moved_heads(session: Session, chains: Iterable[str] | None = None) -> list[tuple[str, int | None, int, str]]:
    """(chain, case id, seq, hash) of every chain whose head differs from its anchor."""
    query = (select(Case.id, Case.audit_seq, Case.audit_head, AuditAnchor.seq, AuditAnchor.hash)
             .outerjoin(AuditAnchor, AuditAnchor.case_id == Case.id)
             .where(Case.audit_seq > 0, or_(AuditAnchor.seq.is_(None), AuditAnchor.seq != Case.audit_seq,
                                            AuditAnchor.hash != Case.audit_head)))
    wanted = set(chains) if chains is not None else None
    if wanted is not None:
        ids = [int(c.split(":", 1)[1]) for c in wanted if c.startswith("case:")]
        query = query.where(Case.id.in_(ids or [-1]))
    moved = [(audit.case_chain(cid), cid, seq, head) for cid, seq, head, _a, _h in session.execute(query)]
    if wanted is None or audit.SYSTEM_CHAIN in wanted:
        system = session.get(AuditHead, audit.SYSTEM_CHAIN)
        anchor = session.get(AuditAnchor, audit.SYSTEM_CHAIN)
        if system is not None and system.seq > 0 and (anchor is None or (anchor.seq, anchor.hash) !=
                                                       (system.seq, system.hash)):
            moved.append((audit.SYSTEM_CHAIN, None, system.seq, system.hash))
    return sorted(moved, key=lambda m: (m[1] is None, m[1] or 0))


def _extends(session: Session, moved: list[tuple[str, int | None, int, str]]) -> tuple[list, list[str]]:
    """The moved heads whose new events verify from their previous anchor; problems of the others
    (they are left unanchored, and reported, until someone looks)."""
    good, problems = [], []
    anchors = {a.chain: a for a in session.scalars(select(AuditAnchor).where(
        AuditAnchor.chain.in_([m[0] for m in moved])))} if moved else {}
    for i in range(0, len(moved), 200):
        batch = moved[i:i + 200]
        conds = [and_(AuditEvent.chain == chain, AuditEvent.seq >= (anchors[chain].seq if chain in anchors else 1))
                 for chain, _c, _s, _h in batch]
        rows = session.execute(select(AuditEvent.chain, AuditEvent.seq, AuditEvent.type, AuditEvent.at,
                                      AuditEvent.actor, AuditEvent.role, AuditEvent.data, AuditEvent.prev_hash,
                                      AuditEvent.hash).where(or_(*conds))
                               .order_by(AuditEvent.chain, AuditEvent.seq)).all()
        by_chain: dict[str, list] = {}
        for row in rows:
            by_chain.setdefault(row.chain, []).append(row)
        for chain, case_id, seq, head in batch:
            anchor = anchors.get(chain)
            events = by_chain.get(chain, [])
            problem = _check_extension(chain, anchor, events, seq, head)
            if problem:
                problems.append(f"{chain}: {problem}")
            else:
                good.append((chain, case_id, seq, head))
    return good, problems


def _check_extension(chain: str, anchor: AuditAnchor | None, events: list, seq: int, head: str) -> str | None:
    start = anchor.seq if anchor is not None else 0
    prev = anchor.hash if anchor is not None else genesis(chain)
    if anchor is not None:
        if not events or events[0].seq != anchor.seq or events[0].hash != anchor.hash:
            return (f"checkpoint anchored event {anchor.seq} with hash {anchor.hash[:12]}…, which is no longer in the "
                    "chain: events were deleted or rewritten after they were anchored")
        events = events[1:]
    if seq < start:
        return f"the head ({seq}) is behind the anchored event {start}: events were cut and the head moved back"
    expected = start + 1
    for ev in events:
        if ev.seq != expected or ev.prev_hash != prev:
            return f"event {ev.seq} does not extend the anchored chain"
        digest = event_hash_text(chain, ev.seq, ev.type, audit.iso(ev.at), ev.actor, ev.role, ev.data, ev.prev_hash)
        if digest != ev.hash:
            return f"event {ev.seq} was edited"
        prev = ev.hash
        expected += 1
    if expected - 1 != seq or prev != head:
        return f"the head ({seq}) does not match the chain's events (last {expected - 1})"
    return None


def make(session: Session, key: SigningKey | None = None, *, chains: Iterable[str] | None = None,
         now: datetime | None = None, force: bool = False) -> dict | None:
    """Append the moved heads as leaves and sign a checkpoint over the tree (in the caller's write
    transaction). ``chains``: only these (an export anchors its own chain at once). None when there
    is nothing new to anchor (unless ``force``) or no key."""
    key = key or load_key()
    if key is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    last = latest(session)
    moved, problems = _extends(session, _moved_heads(session, chains))
    if not moved and not force:
        if problems:
            return {"number": last.number if last is not None else 0, "new": False, "problems": problems}
        return None
    size = last.tree_size if last is not None else 0
    frontier = json.loads(last.frontier) if last is not None else []
    number = (last.number if last is not None else 0) + 1
    leaves, anchors = [], []
    for chain, case_id, seq, head in moved:
        digest = leaf_hash(chain, seq, head)
        leaves.append({"idx": size, "chain": chain, "seq": seq, "hash": head, "leaf_hash": digest, "checkpoint": number})
        _push(frontier, bytes.fromhex(digest))
        anchors.append((chain, case_id, seq, head, size))
        size += 1
    if leaves:
        for i in range(0, len(leaves), 1000):
            session.execute(CheckpointLeaf.__table__.insert(), leaves[i:i + 1000])
    existing = {a.chain: a for a in session.scalars(select(AuditAnchor).where(
        AuditAnchor.chain.in_([a[0] for a in anchors])))} if anchors else {}
    for chain, case_id, seq, head, idx in anchors:
        row = existing.get(chain)
        if row is None:
            session.add(AuditAnchor(chain=chain, case_id=case_id, seq=seq, hash=head, leaf_idx=idx))
        else:
            row.seq, row.hash, row.leaf_idx = seq, head, idx
    when = audit.db_time(now)
    body = {"number": number, "tree_size": size, "root_hash": _fold(frontier).hex(), "at": audit.iso(when),
            "key_id": key.key_id}
    signature = key.sign(checkpoint_message(body))
    session.add(AuditCheckpoint(number=number, tree_size=size, root_hash=body["root_hash"], at=when,
                                key_id=key.key_id, public_key=key.public_hex, signature=signature,
                                frontier=json.dumps(frontier)))
    session.flush()
    return {**body, "new": True, "leaves": len(leaves), "problems": problems}


def periodic(db, now: datetime | None = None) -> dict | None:
    """``tick``: a checkpoint when the last one is older than ``XIAOWEI_CHECKPOINT_MINUTES`` (and heads moved)."""
    if load_key() is None:
        return None
    now = audit.db_time(now)
    with db.read() as s:
        last = latest(s)
        if last is not None and now - last.at < timedelta(minutes=security_settings.checkpoint_minutes()):
            return None
    with db.write() as s:
        made = make(s, now=now)
    return made if made is not None and made.get("new") else None


def ensure_anchored(db, chain: str) -> None:
    """Before an export: anchor the chain's head if the latest checkpoint does not (when a key is here)."""
    if load_key() is None:
        return
    with db.read() as s:
        if not _moved_heads(s, [chain]):
            return
    with db.write() as s:
        make(s, chains=[chain])


# --- reading: what is published and what exports carry --------------------------------------------------

def checkpoint_dict(cp: AuditCheckpoint) -> dict[str, Any]:
    """A signed tree head as published (and as ``trailcheck --checkpoint`` reads it)."""
    return {"format": CHECKPOINT_FORMAT, "number": cp.number, "tree_size": cp.tree_size, "root_hash": cp.root_hash,
            "at": audit.iso(cp.at), "key_id": cp.key_id, "public_key": cp.public_key, "signature": cp.signature}


def published(session: Session, from_size: int | None = None) -> dict[str, Any] | None:
    """The latest checkpoint for the public, with a consistency proof from ``from_size`` if asked."""
    cp = latest(session)
    if cp is None:
        return None
    out = {"checkpoint": checkpoint_dict(cp)}
    if from_size is not None and 0 < from_size <= cp.tree_size:
        t = tree(session, cp.tree_size)
        out["consistency"] = {"from_size": from_size, "from_root": t.root_at(from_size).hex(),
                              "to_size": cp.tree_size, "proof": [p.hex() for p in t.consistency(from_size)]}
    return out


def anchor_for(session: Session, chain: str) -> dict[str, Any] | None:
    """The latest checkpoint and the inclusion proof of ``chain``'s newest anchored head (for an export)."""
    cp = latest(session)
    if cp is None:
        return None
    leaf = session.scalar(select(CheckpointLeaf).where(CheckpointLeaf.chain == chain, CheckpointLeaf.idx < cp.tree_size)
                          .order_by(CheckpointLeaf.idx.desc()).limit(1))
    if leaf is None:
        return None
    t = tree(session, cp.tree_size)
    anchor: dict[str, Any] = {
        "checkpoint": checkpoint_dict(cp), "leaf_index": leaf.idx,
        "leaf": {"chain": leaf.chain, "seq": leaf.seq, "hash": leaf.hash},
        "inclusion": [p.hex() for p in t.inclusion(leaf.idx)],
        "algorithm": "RFC 9162 Merkle tree: leaf = sha256(0x00 || canonical JSON {chain, hash, seq}); node = "
                     "sha256(0x01 || left || right); the district's Ed25519 key signs canonical JSON {at, format, "
                     "key_id, number, root_hash, tree_size}; key_id = sha256(raw public key)",
    }
    previous = session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.number < cp.number)
                              .order_by(AuditCheckpoint.number.desc()).limit(1))
    if previous is not None and 0 < previous.tree_size < cp.tree_size:
        anchor["consistency"] = {"from_number": previous.number, "from_size": previous.tree_size,
                                 "from_root": previous.root_hash,
                                 "proof": [p.hex() for p in t.consistency(previous.tree_size)]}
    return anchor


def summary(session: Session) -> dict[str, Any] | None:
    """What the board, receipts and the handbook print: number, time, root and key fingerprint."""
    cp = latest(session)
    if cp is None:
        return None
    return {"number": cp.number, "at": cp.at, "tree_size": cp.tree_size, "root_hash": cp.root_hash,
            "key_id": cp.key_id, "public_key": cp.public_key}


# --- verifying -------------------------------------------------------------------------------------------

def verify_all(session: Session) -> list[str]:
    """Every checkpoint's signature (by a trusted key) and root (recomputed from the leaves), sizes
    that only grow, anchors that match the leaves, and anchored events still in their chains."""
    problems: list[str] = []
    checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.number)).all()
    if not checkpoints:
        return problems
    trusted = trusted_keys()
    if not trusted:
        problems.append("没有配置签名公钥,无法确认检查点由区级密钥签名(设置 XIAOWEI_SIGNING_KEY 或 XIAOWEI_SIGNING_PUBLIC_KEYS) / "
                        "no trusted public key configured: the checkpoints' signer cannot be confirmed")
    frontier: list[list] = []
    last_leaf: dict[str, tuple[int, int, str]] = {}
    position = 0
    leaves = session.execute(select(CheckpointLeaf.idx, CheckpointLeaf.chain, CheckpointLeaf.seq, CheckpointLeaf.hash,
                                    CheckpointLeaf.leaf_hash).order_by(CheckpointLeaf.idx)
                             .execution_options(yield_per=5000))
    iterator = iter(leaves)
    expected_number, previous_size = 1, 0
    for cp in checkpoints:
        if cp.number != expected_number:
            problems.append(f"检查点编号不连续:缺少第 {expected_number} 号 / checkpoint #{expected_number} is missing")
        expected_number = cp.number + 1
        if cp.tree_size < previous_size:
            problems.append(f"检查点 #{cp.number} 的树比上一个小:叶子被删除 / checkpoint #{cp.number} shrank the tree")
        previous_size = cp.tree_size
        while position < cp.tree_size:
            row = next(iterator, None)
            if row is None:
                problems.append(f"检查点 #{cp.number} 所需的叶子缺失 / leaves of checkpoint #{cp.number} are missing")
                break
            if row.idx != position:
                problems.append(f"叶子编号不连续(第 {position} 号) / leaf {position} is missing")
                position = row.idx
            if leaf_hash(row.chain, row.seq, row.hash) != row.leaf_hash:
                problems.append(f"叶子 {row.idx}({row.chain})被改动 / leaf {row.idx} was edited")
            _push(frontier, bytes.fromhex(row.leaf_hash))
            last_leaf[row.chain] = (row.idx, row.seq, row.hash)
            position += 1
        if _fold(frontier).hex() != cp.root_hash:
            problems.append(f"检查点 #{cp.number} 的根哈希与叶子不符:树被改写 / checkpoint #{cp.number}'s root does not "
                            "match its leaves: the tree was rewritten")
        body = checkpoint_dict(cp)
        if key_id(cp.public_key) != cp.key_id or verify_signature(body) is not True:
            problems.append(f"检查点 #{cp.number} 的签名无效:伪造或改动 / checkpoint #{cp.number}'s signature does not "
                            "verify")
        elif trusted and cp.public_key not in trusted:
            problems.append(f"检查点 #{cp.number} 由未知密钥 {cp.key_id[:16]}… 签名 / checkpoint #{cp.number} is signed "
                            "by an unknown key")
        if len(problems) > 30:
            problems.append("… more problems not listed")
            return problems
    anchors = {a.chain: a for a in session.scalars(select(AuditAnchor))}
    case_ids = set(session.scalars(select(Case.id)))
    for chain in sorted(last_leaf):
        if chain.startswith("case:") and chain[5:].isdigit() and int(chain[5:]) not in case_ids:
            problems.append(f"{chain}: 该事项曾被签名检查点锚定,现已不在数据库中:整个事项被删除 / a case anchored by a "
                            "signed checkpoint is gone from the database")
    for chain, (idx, seq, head) in last_leaf.items():
        a = anchors.get(chain)
        if a is None or (a.seq, a.hash, a.leaf_idx) != (seq, head, idx):
            problems.append(f"{chain} 的锚定记录与检查点叶子不符 / the anchor of {chain} does not match its leaf")
    return problems


def anchor_problems(session: Session, chains: dict[str, tuple[int, str]]) -> dict[str, list[str]]:
    """For each chain (current head seq, hash), what its newest anchored leaf says against it: events
    cut (head behind the anchor) or rewritten (the anchored event is no longer there). One query: the
    newest leaf of each chain joined with the event it names."""
    out: dict[str, list[str]] = {}
    if not chains:
        return out
    newest = select(CheckpointLeaf.chain, func.max(CheckpointLeaf.idx).label("idx")).group_by(CheckpointLeaf.chain)
    if len(chains) <= 500:
        newest = newest.where(CheckpointLeaf.chain.in_(list(chains)))
    newest = newest.subquery()
    query = (select(CheckpointLeaf.chain, CheckpointLeaf.seq, CheckpointLeaf.hash, AuditEvent.hash)
             .join(newest, and_(newest.c.chain == CheckpointLeaf.chain, newest.c.idx == CheckpointLeaf.idx))
             .outerjoin(AuditEvent, and_(AuditEvent.chain == CheckpointLeaf.chain, AuditEvent.seq == CheckpointLeaf.seq)))
    for chain, seq, head, found in session.execute(query):
        if chain not in chains:
            continue
        current_seq, _current = chains[chain]
        if current_seq < seq:
            out.setdefault(chain, []).append(
                f"a signed checkpoint anchors event {seq} of this chain but the chain now ends at {current_seq}: "
                "events were deleted and the head moved back")
        elif found != head:
            out.setdefault(chain, []).append(
                f"event {seq} is not the event a signed checkpoint anchors (hash {head[:12]}…): the chain was rewritten "
                "and rehashed")
    return out


__all__ = ["load_key", "generate_key", "make", "periodic", "ensure_anchored", "published", "anchor_for", "summary",
           "verify_all", "anchor_problems", "Tree", "checkpoint_dict", "trusted_keys"]
