"""Pick the loader for a dataset name; paths from API-triggered jobs stay inside the data root."""

from __future__ import annotations

from pathlib import Path

from shared.datasets import synthetic
from shared.datasets.base import Dataset
from shared.schemas import TrainRequest


class DatasetError(ValueError):
    """The dataset cannot be used; the message says why (shown to users, never a traceback)."""


def load_dataset(request: TrainRequest, data_root: Path) -> Dataset:
    if request.dataset == "synthetic":
        p = request.params
        return synthetic.generate(
            n_users=p.n_users, n_products=p.n_products, n_days=p.n_days, seed=p.seed
        )
    raise DatasetError(f"dataset {request.dataset!r} is not supported by this version yet")
