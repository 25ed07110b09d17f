"""Pages of the printed handbook per procedure, and the print scale of its flowcharts.

    python bench/bench_handbook.py [--edition village|community] [--keep DIR]

Builds a demo database (``xiaowei demo``) in a temporary directory, prints the edition's handbook
to PDF with the machine's Chromium (``xiaowei handbook``), counts its pages with ``pdfinfo``
(poppler-utils) and prints: procedures, pages, pages per procedure, pages that are flowcharts, and
the smallest, median and largest print scale of the charts (CSS px per diagram unit; 12-unit text at
scale 0.5 prints about 1.6 mm tall). Before the column layout of issue #16 the village handbook had
274 pages for 45 procedures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", default="village", choices=("village", "community"))
    parser.add_argument("--keep", type=Path, help="write the PDF and HTML into this directory")
    args = parser.parse_args()
    xiaowei = str(Path(sys.executable).with_name("xiaowei"))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{Path(tmp) / 'hb.db'}"
        env = {**os.environ, "XIAOWEI_SCRYPT_N": "1024", "XIAOWEI_ARGON2": "1,1024,1"}
        subprocess.run([xiaowei, "--db", db, "demo"], check=True, capture_output=True, env=env)
        pdf, html = out / f"handbook-{args.edition}.pdf", out / f"handbook-{args.edition}.html"
        for fmt, path in (("html", html), ("pdf", pdf)):
            subprocess.run([xiaowei, "--db", db, "handbook", "--edition", args.edition, "--format", fmt,
                            "-o", str(path)], check=True, capture_output=True, env=env)
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
        text = html.read_text(encoding="utf-8")
        procedures = text.count('data-chart="')
        sheets = text.count('data-chart-sheet="')
        scales = []
        for match in re.finditer(r'<svg[^>]*class="xw-bpmn hb-chart"[^>]*>', text):
            tag = match.group(0)
            width = float(re.search(r'width="([\d.]+)"', tag).group(1))
            view = re.search(r'viewBox="([-\d. ]+)"', tag).group(1).split()
            scales.append(width / float(view[2]))
    print(f"edition {args.edition}: {procedures} procedures, {pages} pages, "
          f"{pages / procedures:.2f} pages per procedure")
    print(f"chart pages: {procedures} whole charts + {sheets} sheets; print scale min {min(scales):.2f}, "
          f"median {statistics.median(scales):.2f}, max {max(scales):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
