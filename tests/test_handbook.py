"""The printable handbook (一本两库): HTML content per edition, escaping, parameters, and the PDF."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from engine.core import catalogue, directory, procedures
from engine.render.handbook import CHROMIUM_PATH, build_handbook, collect_entries, render_handbook_html
from engine.core.errors import NotFound, XiaoweiError
from engine.services.facade import Xiaowei

ROOT = Path(__file__).resolve().parent.parent


def _library(xw: Xiaowei, edition: str) -> list[dict]:
    with xw.db.read() as s:
        return procedures.list_procedures(s, edition=edition)


def _html(xw: Xiaowei, edition: str) -> str:
    return render_handbook_html(collect_entries(xw, edition), edition=edition, district="示范区")


@pytest.mark.parametrize("edition", ["village", "community"])
def test_every_procedure_of_the_edition_once_with_its_chart(xw: Xiaowei, edition: str) -> None:
    html = _html(xw, edition)
    procs = _library(xw, edition)
    assert procs
    for p in procs:
        assert html.count(f'id="proc-{p["id"]}"') == 1, p["id"]
        assert html.count(f'data-chart="{p["id"]}"') == 1, p["id"]
        assert html.count(f"<h3>{p['name']}</h3>") == 1, p["name"]
    # one whole flowchart per procedure; sheets of wide charts are the only other SVGs
    charts = html.count('class="xw-bpmn hb-chart"')
    sheets = html.count('class="xw-bpmn hb-sheet"')
    assert charts == len(procs)
    assert html.count("<svg") == charts + sheets
    assert f"共 {len(procs)} 项" in html
    assert "示范区" in html
    title = "村级小微权力规范行权事项手册" if edition == "village" else "社区小微权力规范行权事项手册"
    assert f"<h1>{title}</h1>" in html


@pytest.mark.parametrize("edition", ["village", "community"])
def test_category_headings_in_catalogue_order(xw: Xiaowei, edition: str) -> None:
    html = _html(xw, edition)
    present = {p["category"] for p in _library(xw, edition)}
    expected = [c.zh for code, c in catalogue.categories().items() if code in present]
    body = re.findall(r'<h2 class="cat-heading">[一二三四五六七八九十]+、([^<]+)<', html)
    toc = re.findall(r'<h3 class="toc-heading">[一二三四五六七八九十]+、([^<]+)<', html)
    assert body == expected
    assert toc == expected


def test_edition_filter(xw: Xiaowei) -> None:
    village, community = _html(xw, "village"), _html(xw, "community")
    assert not re.search(r'id="proc-C-', village)
    assert not re.search(r'id="proc-V-', community)
    assert 'id="proc-B-DEC-01"' in village and 'id="proc-B-DEC-01"' in community


def test_task_list_disclosure_supervision_and_parameters(xw: Xiaowei) -> None:
    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, "SFQ"), "decision_disclosure_days", "10")
    entries = collect_entries(xw, "village")
    entry = next(e for e in entries if e.definition.id == "V-DEC-01")
    assert entry.params["decision_disclosure_days"] == 10
    html = render_handbook_html(entries, edition="village")
    start = html.index('id="proc-V-DEC-01"')
    section = html[start:html.index("</section>", start)]
    steps = entry.definition.steps
    assert {"collect", "propose", "consult", "resolve", "implement"} <= set(steps)
    for step in steps.values():
        assert f'data-step="{step.id}"' in section
        if step.time_limit is not None:
            assert step.time_limit.zh() in section
    assert "村党组织" in section and "村务监督委员会" in section  # roles in Chinese
    assert "5个工作日" in section
    assert "不少于10天" in section  # disclosure minimum from the district's parameter
    assert "决议事项、表决结果" in section and "村务公开栏" in section
    assert "现场监督表决" in section and "列席并记录意见" in section
    assert "以“两委会”代替村民代表会议决策" in section
    assert "第二十四条" in section
    assert "须走五议两公开的金额起点" in section and "50,000" in section
    assert entry.definition.content_hash[:12] in section
    assert "第 1 版" in section


def test_a_township_handbook_prints_its_own_overrides(xw: Xiaowei, tmp_path: Path) -> None:
    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, "SFQ"), "decision_disclosure_days", "10")
        procedures.set_param(s, directory.get_org(s, "SFZ"), "decision_disclosure_days", "12")
    district = next(e for e in collect_entries(xw, "village") if e.definition.id == "V-DEC-01")
    township = next(e for e in collect_entries(xw, "village", "SFZ") if e.definition.id == "V-DEC-01")
    assert district.params["decision_disclosure_days"] == 10 and district.set_by["decision_disclosure_days"] == "示范区"
    assert township.params["decision_disclosure_days"] == 12 and township.set_by["decision_disclosure_days"] == "示范镇"
    out = tmp_path / "sfz.html"
    build_handbook(xw, "village", "html", out, "SFZ")
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="proc-V-DEC-01"'):]
    section = section[:section.index("</section>")]
    assert "不少于12天" in section and "示范镇设定" in section
    assert "<dt>适用单位</dt><dd>示范镇" in html
    # a village inherits the township's value; the wrong edition and unknown codes are refused
    village = next(e for e in collect_entries(xw, "village", "DONGAO") if e.definition.id == "V-DEC-01")
    assert village.params["decision_disclosure_days"] == 12
    with pytest.raises(XiaoweiError, match="社区版|community"):
        collect_entries(xw, "village", "HEPING")
    with pytest.raises(NotFound):
        collect_entries(xw, "village", "NOWHERE")


def test_text_is_escaped_and_no_script(xw: Xiaowei) -> None:
    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_text(encoding="utf-8")
    evil = xml.replace('name="征求意见(村民说事)"', 'name="征求&lt;script&gt;alert(1)&lt;/script&gt;意见"', 1)
    assert evil != xml
    with xw.db.write() as s:
        version, created = procedures.publish(s, evil.encode("utf-8"), source="evil.bpmn")
    assert created and version.version == 2
    html = _html(xw, "village")
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "征求意见(村民说事)" not in html  # the live version is the one printed
    assert html.count('id="proc-V-DEC-01"') == 1
    assert "第 2 版" in html


def test_build_html_file(xw: Xiaowei, tmp_path: Path) -> None:
    out = tmp_path / "book.html"
    result = build_handbook(xw, "community", "html", out)
    assert result["procedures"] == len(_library(xw, "community"))
    assert result["bytes"] == out.stat().st_size > 10_000
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text


def _png_ink(path: Path) -> float:
    """Fraction of non-white bytes in the decoded image rows of a PNG (8-bit, any colour type)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8
            channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour, 3)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up, corner = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(row))
        prev = row
    pixels = b"".join(rows)
    return sum(1 for b in pixels if b < 200) / len(pixels)


@pytest.mark.browser
def test_community_pdf(xw: Xiaowei, tmp_path: Path) -> None:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    for tool in ("pdfinfo", "pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (poppler-utils) is not installed")
    out = tmp_path / "community.pdf"
    result = build_handbook(xw, "community", "pdf", out)
    n = len(_library(xw, "community"))
    assert result["procedures"] == n
    assert out.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    assert pages > 2 * n  # cover, contents, and at least a text page and a chart page per procedure
    # the first flowchart page: find it by its heading text
    chart_page = None
    for number in range(3, pages + 1):
        text = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), str(out), "-"],
                              capture_output=True, text=True, check=True).stdout
        if re.search(r"流程图\s*·\s*[总全]图", text):
            chart_page = number
            break
    assert chart_page is not None
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(out), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "社区小微权力规范行权事项手册" in page1
    for number, minimum in ((1, 0.002), (chart_page, 0.01)):
        subprocess.run(["pdftoppm", "-r", "50", "-f", str(number), "-l", str(number), "-png", str(out),
                        str(tmp_path / f"p{number}")], check=True)
        png = next(tmp_path.glob(f"p{number}*.png"))
        assert png.stat().st_size > 3_000
        assert _png_ink(png) > minimum, f"page {number} looks blank"
