"""Retraining after N events: the threshold counter, the request it sends, events as rows."""

from __future__ import annotations

import pandas as pd
import redis

from services.trainer.ingest import timeline_gap, with_events
from services.trainer.tasks import retrain_request, threshold_reached
from shared.datasets.base import Dataset
from shared.registry import ModelRegistry
from shared.schemas.training import TrainRequest
from shared.training.params import TrainParams


def test_threshold_counts_across_batches_and_restarts(redis_client: redis.Redis) -> None:
    key = "test-threshold"
    redis_client.delete(key)
    assert not threshold_reached(redis_client, key, 60, 100)
    assert threshold_reached(redis_client, key, 50, 100)  # 110 >= 100
    assert not threshold_reached(redis_client, key, 99, 100)  # counting starts again
    assert not threshold_reached(redis_client, key, 10_000, 0)  # 0 = off
    redis_client.delete(key)


def test_retrain_request_repeats_the_current_recipe_with_events(registry: ModelRegistry) -> None:
    assert retrain_request(registry) == TrainRequest(include_events=True)  # no model yet
    trained = TrainRequest(dataset="synthetic", params=TrainParams(n_users=123))
    registry.publish(
        {"a": b"1"},
        dataset="synthetic",
        metrics={},
        params={**trained.model_dump(mode="json"), "data": {"dataset": "synthetic"}},
    )
    again = retrain_request(registry)
    assert again.params.n_users == 123 and again.include_events


def test_a_retrain_replays_the_request_as_sent_so_its_search_runs_again(
    registry: ModelRegistry,
) -> None:
    """A version keeps its request as sent beside every field: the retrain fixes what that request
    fixed and leaves the rest to the recipe search, as the first training did."""
    trained = TrainRequest.model_validate({"params": {"n_users": 123}})
    registry.publish(
        {"a": b"1"},
        dataset="synthetic",
        metrics={},
        params={
            **trained.model_dump(mode="json"),
            "request": trained.model_dump(mode="json", exclude_unset=True),
        },
    )
    again = retrain_request(registry)
    assert again.params.n_users == 123 and again.include_events
    assert again.params.model_fields_set == {"n_users"}  # graph_l2 and the rest: searched
    body = again.model_dump(mode="json", exclude_unset=True)
    assert body == {"params": {"n_users": 123}, "include_events": True}


def test_events_become_interactions_weighted_by_type() -> None:
    base = Dataset(
        "d",
        pd.DataFrame({"user_id": ["U1"], "product_id": ["P1"], "rating": [1.0], "ts": [100]}),
        pd.DataFrame({"product_id": ["P1"], "title": ["t"], "category": ["c"], "price": [1.0]}),
        pd.DataFrame({"user_id": ["U1"], "age": [30.0], "segment": ["s"]}),
    )
    events = pd.DataFrame(
        {
            "id": ["1-0", "2-0", "3-0"],
            "user": ["U1", "U9", "U1"],
            "product": ["P2", "P1", "P3"],
            "type": ["purchase", "view", "hide"],
            "ts": [200.0, 300.0, 400.0],
        }
    )
    weights = {"view": 1.0, "purchase": 5.0, "hide": 0.0}
    merged = with_events(base, events, weights).interactions  # a hide is no interaction
    assert merged["rating"].tolist() == [1.0, 5.0, 1.0]
    assert merged["ts"].tolist() == [100, 200, 300]
    assert with_events(base, events.iloc[0:0], {}) is base


def test_events_on_another_timeline_are_named() -> None:
    """Today's events over a dataset of another year: the message says how far apart they are;
    events that continue the dataset's timeline (the dataset still within the last 14 days of
    the merged data) get none."""
    day = 86_400
    base = Dataset(
        "d",
        pd.DataFrame({"user_id": ["U1"], "product_id": ["P1"], "rating": [1.0], "ts": [0]}),
        pd.DataFrame({"product_id": ["P1"], "title": ["t"], "category": ["c"], "price": [1.0]}),
        pd.DataFrame({"user_id": ["U1"], "age": [30.0], "segment": ["s"]}),
    )
    events = pd.DataFrame({"ts": [3.0 * day, 401.0 * day]})  # some on its timeline, some not
    gap = timeline_gap(base, events, 14)
    assert gap is not None and gap.startswith("the merged events run until 401 days after")
    assert "(1970-01-01)" in gap and "another timeline" in gap and "the last 14 days" in gap
    assert timeline_gap(base, events.assign(ts=[3.0 * day, 14.0 * day]), 14) is None
    assert timeline_gap(base, events.iloc[0:0], 14) is None
