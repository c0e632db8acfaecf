"""Negative feedback against real processes: a product a user hid or disliked never comes back
to that user, however many events later, and stays available to everyone else."""

from __future__ import annotations

import pytest

from shared.client import RecsysClient
from shared.schemas.serving import EventIn, EventType

pytestmark = pytest.mark.integration


def _products(api: RecsysClient, user: str, k: int = 20) -> list[str]:
    return [i.product for i in api.recommend(user, k=k).items]


def _send(api: RecsysClient, user: str, product: str, kind: EventType) -> None:
    api.send_event(EventIn(user=user, product=product, type=kind))


@pytest.mark.parametrize("kind", ["hide", "dislike"])
def test_a_hidden_product_never_comes_back_to_that_user(api: RecsysClient, kind: EventType) -> None:
    user, other = f"feedback-{kind}", f"feedback-{kind}-other"
    # both users like the same things: the hidden product is a strong candidate for each
    seed = _products(api, "U3")[0]
    for u in (user, other):
        _send(api, u, seed, "click")
    shown = _products(api, user)
    hidden = shown[0]
    assert hidden in _products(api, other)
    _send(api, user, hidden, kind)
    assert hidden not in _products(api, user)
    # more events than the recent list keeps (50): the hide is remembered apart from them
    for _ in range(60):
        _send(api, user, seed, "view")
    assert hidden not in _products(api, user)
    assert hidden not in _products(api, user, k=100)
    popular = _products(api, "someone-new", k=100)
    if hidden in popular:  # cold start answers popular items: still never the hidden one
        _send(api, "someone-new", hidden, kind)
        assert hidden not in _products(api, "someone-new", k=100)
    assert hidden in _products(api, other)  # only that user's answers lose it
