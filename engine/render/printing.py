"""PDFs printed by Chromium, at most N at once per process with a short queue.

Each print starts a Chromium (about a dozen processes and 150 MB). Without a bound, six requests for a
trail's PDF started ~70 processes. :func:`print_pdf` lets ``XIAOWEI_PDF_RENDERS`` prints run at once,
lets ``XIAOWEI_PDF_QUEUE`` more wait up to a minute for a free printer, and refuses the rest with a
Chinese "busy, try again" (HTTP 503) at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from engine.core import security_settings
from engine.core.errors import Busy

WAIT_SECONDS = 60.0


class PrintQueue:
    def __init__(self, slots: int, queue: int):
        self.slots = slots
        self.queue = queue
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.peak = 0

    def run(self, job, *, wait: float = WAIT_SECONDS):
        """Run ``job`` when a slot is free: at once, after waiting in the queue, or refused (Busy)."""
        got = self._free.acquire(blocking=False)
        if not got:
            with self._lock:
                if self.waiting >= self.queue:
                    raise Busy("正在打印的文件较多,请一分钟后再试 / the printer is busy: try again in a minute")
                self.waiting += 1
            try:
                got = self._free.acquire(timeout=wait)
            finally:
                with self._lock:
                    self.waiting -= 1
            if not got:
                raise Busy("排队打印超时,请稍后再试 / waited too long for the printer: try again shortly")
        try:
            with self._lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            return job()
        finally:
            with self._lock:
                self.running -= 1
            self._free.release()


_queue: PrintQueue | None = None
_queue_lock = threading.Lock()


def queue() -> PrintQueue:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = PrintQueue(security_settings.pdf_renders(), security_settings.pdf_queue())
        return _queue


def print_pdf(html: str, output: Path, *, timeout_ms: float = 60_000, wait: float = WAIT_SECONDS) -> None:
    """:func:`engine.handbook.print_pdf` through the process's bounded print queue."""
    from .handbook import print_pdf as chromium_print

    queue().run(lambda: chromium_print(html, output, timeout_ms=timeout_ms), wait=wait)
