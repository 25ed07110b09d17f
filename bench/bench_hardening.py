"""Cost of the hardening (#13): signed checkpoints, anchored exports, the replaying audit verify, the
sign-in's argon2id hash and the per-request session check.

    python bench/bench_hardening.py [--cases N] [--leaves N]

1. Engine-built cases on a fresh SQLite file (N cases of a mix of procedures, a few steps each).
2. The first checkpoint over all of them (each chain's events verified once, a leaf per head, signed),
   then a checkpoint after 1% of the cases moved.
3. An export with its anchor (the inclusion proof over the tree), and trailcheck on it.
4. ``audit verify`` of every chain, with and without the replay of each case.
5. A tree of --leaves leaves (a year of checkpoints at 10,000 cases): building its levels, an
   inclusion proof, a consistency proof, and loading the leaf hashes from the database.
6. argon2id at the default cost (2 passes, 19 MiB, 1 lane) and at RFC 9106's (3, 64 MiB, 4) against
   scrypt N=2^14, and the
   request's session lookup (one indexed join).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("XIAOWEI_ARGON2", "1,8,1")  # the bench users; part 6 measures the production cost

from sqlalchemy import func, insert, select  # noqa: E402

from engine.core import audit, catalogue, checkpoints, directory, procedures, sessions, spiff  # noqa: E402
from engine.services.scenarios import plan_step_data  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from engine.trailcheck import leaf_hash, verify_trail  # noqa: E402
from storage import Database  # noqa: E402
from storage.models import AuditEvent, Case, CheckpointLeaf, User  # noqa: E402

MIX = ["B-FIN-01", "B-PUR-02", "V-DEC-01", "B-PUB-01", "B-SVC-02", "B-PRJ-02"]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def build(xw: Xiaowei, n: int, rng: random.Random) -> list[int]:
    with xw.db.write() as s:
        directory.add_org(s, "BQ", "基准区", "district", None)
        directory.add_org(s, "BZ", "基准镇", "township", "BQ")
        for i in range(20):
            directory.add_org(s, f"V{i:02d}", f"基准{i}村", "village", "BZ")
        users = {}
        for key, role in catalogue.roles().items():
            org = {"village": "BZ", "township": "BZ", "district": "BQ"}[role.level]
            users[key] = directory.add_user(s, f"b_{key}", "password123", [f"{key}@{org}"]).username
    ids = []
    for i in range(n):
        proc = MIX[i % len(MIX)]
        try:
            case_id = xw.start_case(proc, f"V{i % 20:02d}", users["handler"] if proc != "V-DEC-01" else
                                    users["party_branch"])
        except Exception:  # noqa: BLE001 - a starter without the role: skip that mix entry
            continue
        ids.append(case_id)
        for _ in range(rng.randint(1, 4)):
            tasks = xw.tasks(case_id, fire=False)
            if not tasks:
                break
            with xw.db.read() as s:
                case = s.get(Case, case_id)
                rt = procedures.runtime(s, case.procedure_version_id)
                wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
                ready = spiff.ready_user_tasks(wf)
                data = dict(ready[0].data) if ready else {}
                params = dict(wf.data.get(spiff.PARAMS_KEY, {}))
            step = tasks[0]["step_id"]
            try:
                payload = plan_step_data(rt.definition, step, params, data)
                xw.complete(case_id, step, users[rt.definition.steps[step].role or "handler"], payload)
            except Exception:  # noqa: BLE001
                break
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--leaves", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(13)
    folder = Path(tempfile.mkdtemp(prefix="xw-bench-hardening-"))
    os.environ["XIAOWEI_SIGNING_KEY"] = str(folder / "signing.key")
    checkpoints.generate_key(folder / "signing.key")
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    xw = Xiaowei(db)
    xw.init()
    ids, seconds = timed(build, xw, args.cases, rng)
    with db.read() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    print(f"1. built {len(ids)} cases, {events} audit events through the engine in {seconds:.1f} s")

    with db.write() as s:
        made, seconds = timed(checkpoints.make, s)
    print(f"2. first checkpoint: {made['leaves']} heads verified and anchored, tree {made['tree_size']}, "
          f"{seconds * 1000:.0f} ms ({seconds / max(events, 1) * 1e6:.1f} µs per event)")
    moved = rng.sample(ids, max(1, len(ids) // 100))
    for case_id in moved:
        with db.write() as s:
            audit.append_case_event(s, s.get(Case, case_id), "objection_filed", actor="public",
                                    data={"text": "bench"})
    with db.write() as s:
        made, seconds = timed(checkpoints.make, s)
    print(f"   next checkpoint after {len(moved)} cases moved: {seconds * 1000:.1f} ms")

    samples = []
    for case_id in rng.sample(ids, 20):
        with db.write() as s:
            audit.append_case_event(s, s.get(Case, case_id), "objection_filed", actor="public", data={"text": "x"})
        text, seconds = timed(xw.export_trail, case_id)
        samples.append(seconds)
    _, check = timed(verify_trail, text)
    print(f"3. export with anchor (checkpoint of its chain first, then the proof): median "
          f"{statistics.median(samples) * 1000:.1f} ms; trailcheck {check * 1000:.1f} ms")

    reports, full = timed(xw.verify)
    with db.read() as s:
        _, bare = timed(audit.verify, s, None, replay=False)
    bad = [r for r in reports if not r.ok]
    print(f"4. audit verify of {len(reports)} chains: {full:.2f} s with replay, {bare:.2f} s without "
          f"({(full - bare) / max(len(ids), 1) * 1000:.2f} ms per case for the replay); problems: {len(bad)}")

    leaves = [bytes.fromhex(leaf_hash(f"case:{i % 10000}", i, f"{i:064x}")) for i in range(args.leaves)]
    tree, seconds = timed(checkpoints.Tree, leaves)
    _, inclusion = timed(tree.inclusion, args.leaves // 3)
    _, consistency = timed(tree.consistency, args.leaves // 2)
    big = Database(f"sqlite:///{folder / 'leaves.db'}")
    big.upgrade()
    with big.write() as s:
        rows = [{"idx": i, "chain": "case:1", "seq": i, "hash": "0" * 64, "leaf_hash": h.hex(), "checkpoint": 1}
                for i, h in enumerate(leaves)]
        for i in range(0, len(rows), 20000):
            s.execute(insert(CheckpointLeaf), rows[i:i + 20000])
    with big.read() as s:
        _, load = timed(checkpoints.tree, s, args.leaves - 1000)
        _, grow = timed(checkpoints.tree, s, args.leaves)
    print(f"5. tree of {args.leaves} leaves: levels built in {seconds * 1000:.0f} ms, inclusion proof "
          f"{inclusion * 1e6:.0f} µs, consistency proof {consistency * 1e6:.0f} µs; a process's first load of "
          f"the leaves {load * 1000:.0f} ms, then each later checkpoint extends it "
          f"(1,000 new leaves: {grow * 1000:.1f} ms)")

    from argon2 import PasswordHasher, Type
    import hashlib

    hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
    stored = hasher.hash("correct horse")
    argon = statistics.median(timed(hasher.verify, stored, "correct horse")[1] for _ in range(5))
    rfc = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, type=Type.ID)
    stored_rfc = rfc.hash("correct horse")
    argon_rfc = statistics.median(timed(rfc.verify, stored_rfc, "correct horse")[1] for _ in range(5))
    scrypt = statistics.median(timed(hashlib.scrypt, b"correct horse", salt=b"s" * 16, n=2**14, r=8, p=1,
                                     dklen=32)[1] for _ in range(5))
    with db.write() as s:
        user_id = s.scalar(select(User.id).limit(1))
        token = sessions.start(s, user_id)
    lookups = []
    for _ in range(200):
        with db.read() as s:
            lookups.append(timed(sessions.lookup, s, token)[1])
    print(f"6. sign-in hash: argon2id (t=2, 19 MiB, p=1) {argon * 1000:.0f} ms, (t=3, 64 MiB, p=4) {argon_rfc * 1000:.0f} ms, "
          f"scrypt N=2^14 {scrypt * 1000:.0f} ms; "
          f"session lookup per request: median {statistics.median(lookups) * 1e6:.0f} µs")
    db.dispose()
    big.dispose()


if __name__ == "__main__":
    main()
