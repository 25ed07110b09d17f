"""Check an exported audit trail offline: no database, no server, only the standard library.

A trail comes from ``xiaowei audit export CASE_ID -o FILE``, the trail page's JSON export or
GET /api/v1/cases/{id}/trail. Every event carries the hash of the one before it; recomputing the
chain shows whether any event was changed, removed or inserted after the export was signed off.

    python examples/verify_trail.py trail.json     # exit 0 and a summary when it verifies, else 1

It loads ``engine/trailcheck.py`` as a lone file (the same checker ``python -m engine.trailcheck``
runs), so a supervisor can run it on a machine that has only Python and this one file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

CHECKER = Path(__file__).resolve().parent.parent / "engine" / "trailcheck.py"


def load_checker():
    spec = importlib.util.spec_from_file_location("trailcheck", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python examples/verify_trail.py TRAIL.json", file=sys.stderr)
        return 2
    text = Path(argv[0]).read_text(encoding="utf-8")
    problems = load_checker().verify_trail(text)
    if problems:
        print(f"{argv[0]}: 校验失败 / does NOT verify")
        for p in problems:
            print(f"  - {p}")
        return 1
    trail = json.loads(text)
    events = trail["events"]
    print(f"{argv[0]}: 校验通过 / verifies — {len(events)} events, head {trail['head']['hash'][:16]}…")
    for (who, kind), n in sorted(Counter((e.get("actor") or "-", e["type"]) for e in events).items()):
        print(f"  {who:<28} {kind:<18} ×{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
