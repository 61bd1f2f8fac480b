"""Progress of long work: a bar on a terminal; elsewhere (a log file, a pipe, CI) a plain line every
few seconds, since a bar redrawn with carriage returns shows nothing there until it ends."""

from __future__ import annotations

import sys
import time


#: Seconds between progress lines when standard error is not a terminal.
LINE_SECONDS = 5.0


class LineProgress:
    """The part of tqdm's interface this project uses, writing a line every ``interval`` seconds
    (and a last one at the end, if any was written): quiet for work that ends sooner."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
                 interval: float | None = None, file=None, initial: int = 0):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.interval = LINE_SECONDS if interval is None else interval
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.file = file or sys.stderr
        self.n = self.initial = initial  # work done before (a resumed run)
        self.started = self.last = time.monotonic()
        self.written = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._write()

    def _write(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        left = f", {(self.total - self.n) / rate / 60:.1f} min left" if self.total and rate > 0 and self.n < self.total else ""
        pace = f"{rate:.1f} {self.unit}s/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/{self.unit}"
        print(f"{self.desc}: {done} {self.unit}s{share}, {pace}{left}", file=self.file, flush=True)
        self.written = True

    def set_postfix(self, **_) -> None:
        pass

    def close(self) -> None:
        if self.written:  # work that needed progress lines gets a last one
            print(f"{self.desc}: {self.n} {self.unit}s in {time.monotonic() - self.started:.1f} s", file=self.file, flush=True)
            self.written = False

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True,
                 initial: int = 0, interval: float | None = None):
    """A progress bar on a terminal, progress lines elsewhere (every ``interval`` seconds, default
    ``LINE_SECONDS``), or nothing when not ``enabled``."""
    from tqdm.auto import tqdm  # here: importing tqdm costs a cold query 0.1 s

    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial)
    return LineProgress(iterable, total, desc, unit, interval, initial=initial)
