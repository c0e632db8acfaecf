"""The ranker's trees as native code (lleaves: LightGBM's text model -> LLVM machine code).

LightGBM's own `predict` walks its trees generically and pays a per-call setup; for the ranker
service's small per-request batches (one user's 100-200 candidates) the compiled forest gives the
same scores at a fifth of the CPU (docs/benchmarks.md). Compiling a member takes ~1 s per 100
trees and holds the GIL for up to 100 ms at a time, so it runs in a child process: the serving
process only loads the object code (~0.1 s), which the child built from the sha256-verified text
artifact in a private temporary folder; nothing compiled elsewhere is ever loaded. Each member is
checked against LightGBM on probe rows before it is used; whatever goes wrong, LightGBM predicts.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]

log = logging.getLogger(__name__)

CHILD_MODULE = "shared.ml.stage_two.compile_child"
# Compiles in progress, so that a service shutting down can stop them (see stop_compiles).
_running: set[subprocess.Popen[bytes]] = set()
_stopped: set[subprocess.Popen[bytes]] = set()  # of those, the ones stop_compiles() ended
_running_lock = threading.Lock()

# Largest difference from LightGBM's score accepted on the probe rows (both sum the same
# doubles; only the summation order may differ).
TOLERANCE = 1e-9
COMPILE_TIMEOUT_S = 600.0


def lightgbm_predict(booster: lgb.Booster) -> Predict:
    def predict(x: np.ndarray) -> np.ndarray:
        # One thread: per-request batches are small and the services share two cores.
        return np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)

    return predict


def probe_rows(n_features: int, categorical: list[int], rows: int = 256) -> np.ndarray:
    """Rows that reach many leaves: wide random values, missing values, small category codes."""
    rng = np.random.default_rng(0)
    scale = rng.choice([1.0, 10.0, 100.0], (rows, 1))
    x: np.ndarray = rng.normal(0.0, 3.0, size=(rows, n_features)) * scale
    x[rng.random(x.shape) < 0.1] = np.nan
    for j in categorical:
        x[:, j] = rng.integers(-1, 40, size=rows)
    return x


def compile_boosters(boosters: list[lgb.Booster], categorical: list[int]) -> list[Predict | None]:
    """Each booster compiled to native code, or None where that is not possible (lleaves
    missing, the compile failed, or its scores differ from LightGBM's on the probe rows)."""
    try:
        import lleaves  # optional: without it LightGBM predicts
    except ImportError:
        log.warning("lleaves is not installed: the ranker predicts with LightGBM")
        return [None] * len(boosters)
    with tempfile.TemporaryDirectory(prefix="recsys-ranker-") as tmp:  # private: mode 0700
        folder = Path(tmp)
        for i, b in enumerate(boosters):
            (folder / f"m{i}.txt").write_text(b.model_to_string())
        try:
            _run_child([sys.executable, "-m", CHILD_MODULE, tmp, str(len(boosters))])
        except CompileStopped:
            log.info("compiling the ranker stopped: the service is shutting down")
            return [None] * len(boosters)
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            log.error("compiling the ranker failed (%s): LightGBM predicts\n%s", exc, stderr[-999:])
            return [None] * len(boosters)
        out: list[Predict | None] = []
        for i, b in enumerate(boosters):
            try:
                model = lleaves.Model(model_file=str(folder / f"m{i}.txt"))
                model.compile(cache=str(folder / f"m{i}.o"))  # the object code the child built
            except Exception:
                log.exception("loading the compiled ranker member %d failed: LightGBM predicts", i)
                out.append(None)
                continue
            out.append(_checked(b, model, categorical))
    return out


class CompileStopped(subprocess.SubprocessError):
    """The compile's child was ended by stop_compiles()."""


def _run_child(args: list[str]) -> None:
    """subprocess.run(args, check=True, capture_output=True, timeout=COMPILE_TIMEOUT_S), with
    the child registered while it runs so that stop_compiles() can end it."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        with _running_lock:
            _running.add(child)
        try:
            out, err = child.communicate(timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            child.kill()
            exc.stdout, exc.stderr = child.communicate()
            raise
        finally:
            with _running_lock:
                _running.discard(child)
                stopped = child in _stopped
                _stopped.discard(child)
    if stopped:
        raise CompileStopped(f"{args[2]} stopped")
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, args, out, err)


def stop_compiles() -> int:
    """End every compile in progress (a service shutting down): each fails like any failed
    compile, its temporary folder is removed, LightGBM predicts. Returns how many were ended."""
    with _running_lock:
        children = list(_running)
        _stopped.update(children)
    for child in children:
        child.terminate()
    return len(children)


def _checked(booster: lgb.Booster, model: object, categorical: list[int]) -> Predict | None:
    def predict(x: np.ndarray) -> np.ndarray:
        scores: np.ndarray = model.predict(  # type: ignore[attr-defined]
            np.ascontiguousarray(x, dtype=np.float64), n_jobs=1
        )
        return scores

    probe = probe_rows(booster.num_feature(), categorical)
    gap = float(np.max(np.abs(predict(probe) - lightgbm_predict(booster)(probe)), initial=0.0))
    if not gap <= TOLERANCE:
        log.error("compiled ranker differs from LightGBM by %.3g: LightGBM predicts", gap)
        return None
    return predict
