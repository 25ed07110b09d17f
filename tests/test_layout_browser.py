"""Issue #16 (layout, phones, public navigation) in a real browser and over the app's routes.

* every QR code the pages render (the printed receipt, the case page, the staff step page's header)
  is decoded with a real decoder (zxing-cpp) from a Chromium screenshot and names the case's page;
* a link crawl over every public page from the demo boards finds no 404 and no 500;
* the public case page and a step page at 390×844 and 1366×900: the page fits the width, the step list
  marks the current step, the chart fits the width; screenshots in test-artifacts/layout-*.png.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from engine.core import cases, clock
from engine.services.scenarios import walk
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"layout-{name}.png"), full_page=True)


def _case_at_notice(xw, people) -> tuple[int, str]:
    # The server thread runs on the real clock: so does this case, whose notice period must still run.
    with clock.using(clock.SystemClock()):
        case = xw.start_case("B-PUR-02", "DONGAO", people["handler"], {"title": "村委会办公用品采购"})
        walk(xw, case, people, stop_at="disclose_result_objections")
    return case, xw.show_case(case)["tracking_code"]


def _grey(png: bytes) -> tuple[bytes, int, int]:
    """A screenshot PNG (8-bit RGB or RGBA) as grey pixels, width, height (no imaging library needed)."""
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    out, prev = bytearray(), bytearray(stride)
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
        out += bytes(row[i] if channels < 3 else (row[i] + row[i + 1] + row[i + 2]) // 3
                     for i in range(0, stride, channels))
        prev = row
    return bytes(out), width, height


def _decode(png: bytes) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    pixels, width, height = _grey(png)
    image = memoryview(pixels).cast("B", (height, width))
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


# --- QR codes --------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")
def test_every_rendered_qr_code_scans(browser, xw, people):
    case, code = _case_at_notice(xw, people)
    with clock.using(clock.SystemClock()):
        receipt = xw.file_objection(code, "采购价格明显高于市场价,请核实")["receipt_code"]
    receipt = cases.format_tracking_code(cases.normalize_tracking_code(receipt))
    app = make_app(xw)
    with serve_in_thread(app) as base:
        target = f"{base}/public/case/{code}"
        context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN", device_scale_factor=2)
        page = context.new_page()
        for name, path, expected in (("receipt", f"/public/case/{code}/receipt", target),
                                     ("case", f"/public/case/{code}", target),
                                     ("objection receipt", f"/public/objection/{receipt}/receipt",
                                      f"{base}/public/objection/{receipt}")):
            assert page.goto(base + path).status == 200, name
            qr = page.locator(".qr svg").first
            box = qr.bounding_box()
            assert box and box["width"] <= SIZES["phone"]["width"], name
            # the whole code is drawn: the SVG's box is its viewBox, nothing clipped
            view = qr.get_attribute("viewBox").split()
            assert abs(box["width"] / box["height"] - float(view[2]) / float(view[3])) < 0.01, name
            assert _decode(qr.screenshot()) == [expected], name
        # the staff step page's header links to the same public page by its QR code
        staff = browser.new_context(viewport=SIZES["desktop"], locale="zh-CN", device_scale_factor=2)
        step = staff.new_page()
        _sign_in(step, base, people["handler"])
        step.goto(f"{base}/cases/{case}")
        assert _decode(step.locator(".case-qr svg").first.screenshot()) == [target]


def _sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(base + "/tasks")


# --- the link crawl -------------------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value and ((tag == "a" and key == "href") or (tag == "link" and key == "href")
                          or (tag == "form" and key == "action")):
                self.found.append(value)


def test_public_link_crawl_finds_no_dead_end(xw, people):
    _case_at_notice(xw, people)
    with clock.using(clock.SystemClock()):
        report = xw.report("DONGAO", "村里去年的保洁费用支出账目不清,请核查", topic="funds")["tracking_code"]
    client = make_app(xw).test_client()
    tracked = f"/public/case/{cases.format_tracking_code(cases.normalize_tracking_code(report))}"
    start = ["/public/", "/public/DONGAO", "/public/NANXI", "/public/HEPING", tracked, "/favicon.ico",
             "/public/track"]
    seen: dict[str, int] = {}
    queue = list(start)
    while queue and len(seen) < 400:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code in (301, 302, 303):
            queue.append(urlsplit(response.headers["Location"]).path)
            continue
        if "html" not in (response.content_type or ""):
            continue
        parser = _Links()
        parser.feed(response.get_data(as_text=True))
        for href in parser.found:
            parts = urlsplit(urljoin("http://localhost" + url, href))
            if parts.netloc not in ("", "localhost"):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query and parts.path == "/public/track" else "")
            if path.startswith(("/public", "/static", "/favicon")) and path not in seen:
                queue.append(path)
    broken = {url: status for url, status in seen.items() if status >= 400}
    assert not broken, broken
    assert len(seen) > 30  # the boards, money pages, procedures, cases, receipts, the township page
    assert seen["/public/SFZ"] == 200 and seen["/favicon.ico"] == 200  # the report's header link: its township
    assert seen[tracked] == 200


def test_public_error_pages_lead_back_to_the_board(xw):
    client = make_app(xw).test_client()
    page = client.get("/public/DONGAO/procedures/NO-SUCH")
    assert page.status_code == 404
    text = page.get_data(as_text=True)
    assert "返回我的待办" not in text and 'href="/public/DONGAO"' in text
    page = client.get("/public/case/ZZZZ-ZZZZ-ZZZZ")
    assert page.status_code == 404 and 'href="/public/"' in page.get_data(as_text=True)
    assert "返回我的待办" not in page.get_data(as_text=True)
    town = client.get("/public/SFZ").get_data(as_text=True)
    assert 'href="/public/DONGAO"' in town and 'href="/public/NANXI"' in town
    assert re.search(r'<link rel="icon" href="/static/favicon.svg"', town)


# --- phones and desktops -------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")
@pytest.mark.parametrize("size", sorted(SIZES))
def test_case_page_and_step_page_fit_the_screen(browser, xw, people, size):
    case, code = _case_at_notice(xw, people)
    viewport = SIZES[size]
    app = make_app(xw)
    with serve_in_thread(app) as base:
        public = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1,
                                     java_script_enabled=False).new_page()
        public.goto(f"{base}/public/case/{code}")
        _fits(public, viewport)
        marked = public.locator("ol.path li[aria-current=step]")
        assert marked.count() >= 1 and "采购结果公开" in marked.first.inner_text()
        assert public.locator("ol.path li.path-done").count() >= 3
        chart = public.locator(".chart svg").bounding_box()
        assert chart["width"] <= viewport["width"]
        shoot(public, f"case-{size}")
        full = public.locator("a:has-text('查看完整流程图')").get_attribute("href")
        assert public.request.get(base + full).status == 200

        staff = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1).new_page()
        _sign_in(staff, base, people["handler"])
        staff.goto(f"{base}/cases/{case}")
        _fits(staff, viewport)
        assert staff.locator("#diagram ol.path li[aria-current=step]").count() >= 1
        assert staff.locator("#diagram svg.xw-bpmn").bounding_box()["width"] <= viewport["width"]
        shoot(staff, f"step-{size}")


def _fits(page, viewport) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
