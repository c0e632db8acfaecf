"""TrainRequest fills in a bundled dataset's own recipe choices wherever a request is silent."""

from __future__ import annotations

from shared.schemas.training import TrainRequest
from shared.training.params import DATASET_PARAMS, TrainParams

MOVIELENS = DATASET_PARAMS["movielens-100k"]


def test_a_silent_request_gets_the_datasets_choices() -> None:
    params = TrainRequest(dataset="movielens-100k").params
    assert {key: getattr(params, key) for key in MOVIELENS} == MOVIELENS
    assert params.graph_session_minutes > 0 and params.graph_label_weight > 0
    # every other field stays TrainParams' default
    rest = params.model_dump(exclude=set(MOVIELENS))
    assert rest == TrainParams().model_dump(exclude=set(MOVIELENS))


def test_fields_a_request_names_are_kept_even_when_they_equal_the_global_default() -> None:
    body = {"dataset": "movielens-100k", "params": {"graph_session_minutes": 0, "seed": 7}}
    params = TrainRequest.model_validate(body).params
    assert params.graph_session_minutes == 0 and params.seed == 7
    assert params.graph_label_weight == MOVIELENS["graph_label_weight"]


def test_resolved_requests_travel_unchanged() -> None:
    request = TrainRequest.model_validate(
        {"dataset": "movielens-100k", "params": {"graph_neighbours": 100}}
    )
    again = TrainRequest.model_validate(request.model_dump(mode="json"))
    assert again == request and again.params.graph_neighbours == 100


def test_online_retail_names_its_labels_by_title_words() -> None:
    params = TrainRequest(dataset="online-retail").params
    assert params.graph_title_labels and params.graph_label_weight > 0
    assert params.graph_session_minutes == 0  # its baskets are no sittings


def test_other_datasets_keep_the_global_defaults() -> None:
    for dataset in ("synthetic", "csv"):
        assert dataset not in DATASET_PARAMS
        assert TrainRequest.model_validate({"dataset": dataset}).params == TrainParams()
