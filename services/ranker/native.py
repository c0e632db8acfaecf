"""Compile each loaded ranker version to native code in the background.

A version is served the moment it is loaded, with LightGBM's own predict; its compiled trees
(same scores, a fifth of the CPU) replace that a few seconds later, so compiling never delays a
swap (the candidate stage may already be answering with that version). One compile at a time,
oldest first; a version dropped before its turn (superseded twice) is skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref

from shared.ml.model import RankingModel
from shared.ml.ranker import RankerModel

log = logging.getLogger(__name__)


class NativeCompiler:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[weakref.ref[RankerModel]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, model: RankingModel) -> None:
        """Queue `model`'s ranker (called from the loader's thread, after a load)."""
        # A weak reference: a queued compile must not keep a dropped version in memory.
        self._queue.put(weakref.ref(model.ranker))
        with self._lock:
            if self._worker is None:
                # A daemon: shutting the service down never waits for a compile in progress.
                self._worker = threading.Thread(
                    target=self._run, name="ranker-compile", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while True:
            ranker = self._queue.get()()
            if ranker is None:
                continue
            try:
                ranker.compile()
            except Exception:  # never fatal: LightGBM keeps predicting
                log.exception("ranker: compiling to native code failed")
            del ranker  # hold no version between compiles
