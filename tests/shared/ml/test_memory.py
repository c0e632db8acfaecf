"""Dense fits are refused before they allocate; a fit's peak memory is measured."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml import memory
from shared.ml.baselines import EASE
from shared.ml.memory import ModelTooLarge, PeakRss, require_dense


def test_a_catalog_over_the_limit_is_refused_with_the_sizes() -> None:
    with pytest.raises(ModelTooLarge, match=r"EASE: 24,000 items is over its limit of 20,000"):
        require_dense("EASE", 24_000, 4.0, max_items=20_000)


def test_a_fit_bigger_than_the_free_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)  # 1 GiB free
    with pytest.raises(ModelTooLarge, match=r"needs ~7.6 GiB, 1.0 GiB are available"):
        require_dense("EASE", 16_000, 4.0)
    require_dense("EASE", 1_000, 4.0)  # 32 MB: fine


def test_ease_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    before = memory.rss_bytes()
    x = sp.random(50, 3000, density=0.01, format="csr", random_state=0)
    with pytest.raises(ModelTooLarge):
        EASE().fit(x)  # 3000^2 x 8 x 4 = 288 MB would be needed
    assert memory.rss_bytes() - before < 100 * 2**20


def _return_free_heap_pages() -> None:
    """glibc's malloc serves a request from a free chunk of its heap before it maps new pages,
    and earlier tests leave big free chunks resident: the allocation below would then fault
    nothing in. malloc_trim hands their pages back to the kernel (a no-op where not glibc)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def test_peak_rss_sees_a_temporary_allocation() -> None:
    # earlier tests' cyclic garbage, collected inside the block, would lower the RSS the
    # allocation is measured against
    gc.collect()
    gc.disable()
    _return_free_heap_pages()
    try:
        before = memory.rss_bytes()
        with PeakRss(every=0.005) as peak:
            block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
            block += 1.0
            # until the sampler saw it (a thread may wait long for a core on a busy machine)
            deadline = time.monotonic() + 10.0
            while peak.peak - before < 48 * 2**20 and time.monotonic() < deadline:
                time.sleep(0.01)
            del block  # freed before the block ends: only the sampler saw it
    finally:
        gc.enable()
    assert peak.peak - before >= 48 * 2**20
