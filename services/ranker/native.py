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
import time
import weakref

from shared.ml.stage_two.compiled import stop_compiles
from shared.ml.stage_two.model import RankerEnsemble
from shared.ml.stage_two.serving import RankingStage

log = logging.getLogger(__name__)


class NativeCompiler:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[weakref.ref[RankerEnsemble] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, model: RankingStage) -> None:
        """Queue `model`'s ranker (called from the loader's thread, after a load)."""
        # A weak reference: a queued compile must not keep a dropped version in memory.
        self._queue.put(weakref.ref(model.ranker))
        with self._lock:
            if self._worker is None and not self._closed:
                # A daemon: a stopping service waits for it only through close(), which
                # ends the compile in progress first.
                self._worker = threading.Thread(
                    target=self._run, name="ranker-compile", daemon=True
                )
                self._worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop compiling (the service shuts down): the compile in progress is ended, its
        temporary folder removed, and queued versions are dropped."""
        with self._lock:
            self._closed = True
            worker = self._worker
        self._queue.put(None)  # wakes an idle worker to leave
        deadline = time.monotonic() + timeout
        while worker is not None and worker.is_alive() and time.monotonic() < deadline:
            stop_compiles()  # again each time: a compile may have been starting its child
            worker.join(0.1)

    def _run(self) -> None:
        while not self._closed:
            ref = self._queue.get()
            ranker = ref() if ref is not None else None
            if ranker is None or self._closed:
                continue
            try:
                ranker.compile()
            except Exception:  # never fatal: LightGBM keeps predicting
                log.exception("ranker: compiling to native code failed")
            del ranker  # hold no version between compiles
