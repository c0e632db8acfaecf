"""No recipe in the code names a dataset: every dataset starts from the same defaults, and
training's tuner chooses from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.schemas.training import TrainRequest
from shared.training.params import TrainParams

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dataset", ["synthetic", "online-retail", "movielens-100k", "csv"])
def test_every_dataset_gets_the_same_defaults(dataset: str) -> None:
    assert TrainRequest.model_validate({"dataset": dataset}).params == TrainParams()


def test_fields_a_request_names_are_kept_and_marked_as_set() -> None:
    body = {"dataset": "movielens-100k", "params": {"graph_session_minutes": 0, "seed": 7}}
    params = TrainRequest.model_validate(body).params
    assert params.graph_session_minutes == 0 and params.seed == 7
    assert params.model_fields_set == {"graph_session_minutes", "seed"}  # the tuner keeps them


def test_a_request_as_sent_holds_the_fields_it_set_and_survives_a_round_trip() -> None:
    body = {"params": {"graph_l2": 300.0}, "include_events": True}
    request = TrainRequest.model_validate(body)
    assert request.as_sent() == body  # no default written out: the search keeps the rest
    assert TrainRequest().as_sent() == {}
    again = TrainRequest.model_validate(request.as_sent())
    assert again.params.model_fields_set == {"graph_l2"} and again == request


def test_no_training_or_model_code_names_a_bundled_dataset() -> None:
    names = ("movielens", "online-retail", "online_retail", "uci_retail")
    for folder in ("shared/training", "shared/ml"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text().lower()
            assert not [n for n in names if n in text], path
