"""Download progress: one in-place line on a terminal, one summary line otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO

from geonox.cache import human_size


class Progress:
    """A single in-place line on a terminal, one summary line otherwise, or nothing."""

    def __init__(self, enabled: bool, filename: str) -> None:
        self.stream: IO[str] = sys.stderr
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.tty = enabled and bool(isatty and isatty())
        self.filename = filename
        self.drawn = False

    def note(self, text: str) -> None:
        if self.enabled:
            self._clear()
            print(text, file=self.stream, flush=True)

    def start(self, total: int | None) -> None:
        self.total = total
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and (self.total is None or done < self.total):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-6)
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 24)
            line = (
                f"{self.filename} [{bar:<24}] {human_size(done)} / {human_size(self.total)}"
                f"  {human_size(rate)}/s"
            )
        else:
            line = f"{self.filename} {human_size(done)}  {human_size(rate)}/s"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    def fail(self) -> None:
        if self.tty:
            self._clear()

    def done(self, size: int, where: str, seconds: float) -> None:
        self.note(
            f"fetched {self.filename} ({human_size(size)}) from {where} in "
            f"{seconds:.1f} s, sha256 ok"
        )
