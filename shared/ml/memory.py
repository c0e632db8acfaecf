"""Memory a model needs, checked before it is allocated, and the peak a fit really used.

A dense items x items matrix grows with the square of the catalog: at 24k items one float64 copy
is 4.6 GB, and a fit holds several. Such a fit is refused with a message before anything is
allocated (never a crash), and the caller falls back or skips the model with that reason.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

# A dense fit may use at most this share of the memory available when it starts.
AVAILABLE_SHARE = 0.7


class ModelTooLarge(MemoryError):
    """A model would not fit in memory (or past its size limit); the message says why."""


def available_bytes() -> int:
    """Memory available for new allocations without swapping (Linux MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def require_dense(what: str, n_items: int, copies: float, max_items: int | None = None) -> None:
    """Refuse (ModelTooLarge) a fit holding `copies` float64 n_items x n_items matrices at once
    that is over `max_items` or would not fit in the available memory."""
    need = copies * 8.0 * n_items * n_items
    if max_items is not None and n_items > max_items:
        raise ModelTooLarge(
            f"{what}: {n_items:,} items is over its limit of {max_items:,} "
            f"(a dense items x items fit; it would need ~{need / 2**30:.1f} GiB)"
        )
    free = available_bytes()
    if need > AVAILABLE_SHARE * free:
        raise ModelTooLarge(
            f"{what}: a dense fit over {n_items:,} items needs ~{need / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB are available"
        )


def rss_bytes() -> int:
    """This process's resident memory now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class PeakRss:
    """`with PeakRss() as peak: ...` samples the process's RSS every `every` seconds in a thread;
    `peak.mb` is the highest seen (the process's, not only what the block allocated)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def mb(self) -> float:
        return self.peak / 2**20
