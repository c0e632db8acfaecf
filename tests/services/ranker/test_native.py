"""The ranker service's background compiler: one version at a time, oldest first, and a version
dropped before its turn is not compiled (nor kept alive by the queue)."""

from __future__ import annotations

import gc
import threading

import pytest

from services.ranker.native import NativeCompiler
from shared.ml.model import RankingModel


class FakeRanker:
    """Records its compile; the first one blocks until released, so others queue behind it."""

    def __init__(self, name: str, done: list[str], gate: threading.Event) -> None:
        self.name, self.done, self.gate = name, done, gate
        self.finished = threading.Event()

    def compile(self) -> int:
        self.gate.wait(10)
        self.done.append(self.name)
        self.finished.set()
        return 1


class Broken(FakeRanker):
    def compile(self) -> int:
        raise RuntimeError("LLVM said no")


def model(ranker: FakeRanker) -> RankingModel:
    holder = RankingModel.__new__(RankingModel)
    holder.ranker = ranker  # type: ignore[assignment]
    return holder


def test_versions_compile_in_order_and_dropped_ones_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    gate = threading.Event()
    compiler = NativeCompiler()
    first, dropped, last = (FakeRanker(n, done, gate) for n in ("v1", "v2", "v3"))
    compiler.submit(model(first))
    compiler.submit(model(dropped))
    broken = Broken("v2b", done, gate)
    compiler.submit(model(broken))  # fails: logged, and the queue goes on
    compiler.submit(model(last))
    del dropped  # the holder let go of v2 while v1 was still compiling
    gc.collect()
    gate.set()
    assert last.finished.wait(10)
    assert done == ["v1", "v3"]
    assert "compiling to native code failed" in caplog.text and "LLVM said no" in caplog.text
