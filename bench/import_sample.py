"""How many BPMN 2.0 files from other modelers Xiaowei imports: the figure of issue #15.

    python bench/import_sample.py [DIR ...] [--json]

Default sample: ``tests/fixtures/foreign/`` (unmodified public exports of many tools, sources and
licences in its README); ``--with-local`` adds the hand-written imitations in ``tests/fixtures/``. For each file: is it valid against the BPMN 2.0
XSD, was it imported (a draft would be stored), did the import crash (an unexpected exception: the
import's last net turns it into a message, and this script counts it as a crash), and what the
assistant could then fix. Prints one line per file and the share of schema-valid files imported.
Nothing is stored: the import is analysed, not saved.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.core import spiff  # noqa: E402
from engine.core.xmlsafe import UnsafeXml, parse_xml  # noqa: E402
from engine.services import editing  # noqa: E402
from engine.services.import_assistant import assist_xml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = [ROOT / "tests" / "fixtures" / "foreign"]
EXTRA = ["camunda_plain.bpmn", "signavio_lanes.bpmn"]


def tool_of(path: Path) -> str:
    return re.split(r"[-_]", path.name, maxsplit=1)[0].lower()


def run(paths: list[Path]) -> dict:
    rows = []
    for path in paths:
        data = path.read_bytes()
        try:
            spiff.validate_xsd(parse_xml(data, max_bytes=editing.IMPORT_MAX_BYTES), path.name)
            valid = True
        except (UnsafeXml, Exception):  # noqa: BLE001 — any refusal of the XSD or the parser
            valid = False
        report = editing.analyze_import(data, path.name)
        crashed = any(p.get("code") == "internal" for p in report.problems)
        fixes = remaining = None
        publishable = False
        if report.status == "imported" and report.xml is not None:
            result = assist_xml(report.xml)  # roles as suggested by the lanes' names, nothing chosen by hand
            fixes, remaining = len(result.fixed), len([t for t in result.todo if t.get("severity") == "error"])
            publishable = result.publishable
        rows.append({"file": path.name, "tool": tool_of(path), "schema_valid": valid, "status": report.status,
                     "crashed": crashed, "procedure_id": report.procedure_id, "name": report.name,
                     "laid_out": report.laid_out, "assistant_fixed": fixes, "still_to_do": remaining,
                     "publishable_after_assistant": publishable,
                     "message": report.message.split(" / ")[0]})
    valid_rows = [r for r in rows if r["schema_valid"]]
    imported = [r for r in valid_rows if r["status"] == "imported"]
    return {"files": len(rows), "tools": len({r["tool"] for r in rows}), "schema_valid": len(valid_rows),
            "imported_of_valid": len(imported), "share": round(100 * len(imported) / len(valid_rows), 1) if valid_rows else 0.0,
            "crashes": sum(r["crashed"] for r in rows),
            "imported_of_all": sum(r["status"] == "imported" for r in rows),
            "publishable_after_assistant": sum(r["publishable_after_assistant"] for r in rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--with-local", action="store_true", help="add tests/fixtures/camunda_plain.bpmn and signavio_lanes.bpmn")
    args = parser.parse_args()
    paths: list[Path] = []
    for d in args.dirs or DEFAULT_DIRS:
        paths += sorted(p for p in d.iterdir() if p.name.endswith((".bpmn", ".xml", ".bpmn2")) and p.is_file())
    if args.with_local:
        paths += [ROOT / "tests" / "fixtures" / name for name in EXTRA]
    result = run(paths)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for r in result["rows"]:
        flag = "CRASH" if r["crashed"] else r["status"]
        assist = f" assistant fixed {r['assistant_fixed']}, {r['still_to_do']} errors left" if r["assistant_fixed"] is not None else ""
        print(f"{r['file']:<48} {'valid' if r['schema_valid'] else 'INVALID':<8} {flag:<9}{assist}  {r['message'][:60]}")
    print(f"\n{result['files']} files from {result['tools']} tools; {result['schema_valid']} valid against the BPMN 2.0 XSD; "
          f"imported {result['imported_of_valid']}/{result['schema_valid']} = {result['share']}% of the valid ones "
          f"({result['imported_of_all']}/{result['files']} of all); crashes: {result['crashes']}; publishable after the "
          f"assistant alone (no choice made by hand): {result['publishable_after_assistant']}/{result['files']}")


if __name__ == "__main__":
    main()
