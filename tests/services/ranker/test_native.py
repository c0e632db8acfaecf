"""The ranker service's background compiler: one version at a time, oldest first, a version
dropped before its turn is not compiled (nor kept alive by the queue), and closing it ends the
compile in progress without leaving its child process or temporary folder behind."""

from __future__ import annotations

import gc
import logging
import tempfile
import threading
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from services.ranker.native import NativeCompiler
from shared.ml.stage_two import compiled
from shared.ml.stage_two.serving import RankingStage


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


def model(ranker: object) -> RankingStage:
    holder = RankingStage.__new__(RankingStage)
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


class ChildCompile:
    """Compiles one real booster through compile_boosters (its child process and folder)."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self.result: list[object] | None = None
        self.finished = threading.Event()

    def compile(self) -> int:
        self.result = list(compiled.compile_boosters([self.booster], []))
        self.finished.set()
        return 0


def test_closing_ends_the_compile_in_progress_and_its_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=compiled.__name__)
    monkeypatch.setattr(compiled, "CHILD_MODULE", "tests.sleeper")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its folder goes
    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.normal(size=(200, 3)), rng.normal(size=200))
    booster = lgb.train({"verbose": -1, "num_leaves": 4}, data, num_boost_round=3)
    job = ChildCompile(booster)
    compiler = NativeCompiler()
    compiler.submit(model(job))
    deadline = time.monotonic() + 30  # a bound on the wait for the child to start
    while not compiled._running:
        assert time.monotonic() < deadline, "the compile's child never started"
        time.sleep(0.02)
    (child,) = compiled._running
    assert list(tmp_path.iterdir())  # its folder, with the member's text model
    compiler.close(timeout=10)
    assert job.finished.is_set() and job.result == [None]  # failed like any compile: LightGBM
    assert child.poll() is not None  # the child ended
    assert list(tmp_path.iterdir()) == []  # and its folder is gone
    assert "compiling the ranker stopped" in caplog.text  # a shutdown, not a failure
    assert "compiling the ranker failed" not in caplog.text
    compiler.submit(model(job))  # a closed compiler takes no more work
    assert not compiled._running
