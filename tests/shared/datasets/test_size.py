"""`shared.datasets.size`: a file's rows estimated from its start, a file too big to read refused
before it is read, and data too big to train on refused before training."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from shared.datasets import csv_interactions, size, synthetic
from shared.datasets.report import DatasetError
from shared.datasets.size import SAMPLE_BYTES, TRAIN_BYTES_PER_ROW, estimated_rows
from shared.training.params import TrainParams
from shared.training.run import run_training


def test_rows_are_estimated_from_the_start_of_the_file(tmp_path: Path) -> None:
    lines = [f"{i},{i % 97},{i % 5 + 1},{1_700_000_000 + i}\n" for i in range(200_000)]
    path = tmp_path / "events.csv"
    path.write_text("".join(lines))
    assert path.stat().st_size > 3 * SAMPLE_BYTES  # so the count is an estimate
    assert abs(estimated_rows(path) - 200_000) < 0.05 * 200_000
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert abs(estimated_rows(packed) - 200_000) < 0.1 * 200_000
    small = tmp_path / "small.csv"
    small.write_text("user,item\nu1,p1\nu2,p2")  # no line end after the last line
    assert estimated_rows(small) == 2
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b" + b"\x00" * 100)  # the reader says what is wrong with it
    assert estimated_rows(broken) == 0


def test_a_file_too_big_for_this_machine_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # A real file of short lines whose rest is a hole: its size is what the estimate sees, and
    # nothing past its first megabytes is ever read (nor written to the disk).
    path = tmp_path / "huge.csv"
    path.write_text("user,item\n" + "1,2\n" * 400_000)
    os.truncate(path, 16 * 2**30)  # ~4.3 billion rows of "1,2"
    with pytest.raises(DatasetError) as err:
        csv_interactions.load(path, "user", "item")
    text = str(err.value)
    assert text.startswith("huge.csv: ~4,29") and " rows; reading them needs at least ~" in text
    assert text.endswith(
        "GiB are available. Take a sample first (e.g. a share of the users) or use a machine "
        "with more memory"
    )


def test_data_too_big_to_train_on_is_refused_before_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The machine's memory is what is stood in for: a log of tens of millions of rows is not
    # made here. The rows and the bound are the real ones.
    data = synthetic.generate(n_users=50, n_products=20, n_days=30)
    need = len(data.interactions) * TRAIN_BYTES_PER_ROW
    monkeypatch.setattr(size, "available_bytes", lambda: need)
    size.require_trainable(data)  # just fits: not refused
    monkeypatch.setattr(size, "available_bytes", lambda: need - 1)
    with pytest.raises(DatasetError) as err:
        size.require_trainable(data)
    assert str(err.value).startswith(
        f"synthetic: {len(data.interactions):,} interactions; training on them needs at least ~"
    )
    assert "GiB are available. Take a sample first" in str(err.value)
    with pytest.raises(DatasetError, match="training on them needs"):
        run_training(data, TrainParams(tune_budget_seconds=0))  # before anything is fitted
