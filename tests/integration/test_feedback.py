"""Negative feedback against real processes: a product a user hid or disliked never comes back
to that user, however many events later, and stays available to everyone else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack

pytestmark = pytest.mark.integration


def _products(stack: Stack, user: str, **params: Any) -> list[str]:
    r = httpx.get(
        f"{stack.gateway_url}/recommend", params={"user": user, "k": 20, **params}, timeout=10
    )
    assert r.status_code == 200, r.text
    return [str(i["product"]) for i in r.json()]


def _send(stack: Stack, user: str, product: str, kind: str) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/events",
        json={"user": user, "product": product, "type": kind},
        timeout=10,
    )
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("kind", ["hide", "dislike"])
def test_a_hidden_product_never_comes_back_to_that_user(stack: Stack, kind: str) -> None:
    user, other = f"feedback-{kind}", f"feedback-{kind}-other"
    # both users like the same things: the hidden product is a strong candidate for each
    seed = _products(stack, "U3")[0]
    for u in (user, other):
        _send(stack, u, seed, "click")
    shown = _products(stack, user)
    hidden = shown[0]
    assert hidden in _products(stack, other)
    _send(stack, user, hidden, kind)
    assert hidden not in _products(stack, user)
    # more events than the recent list keeps (50): the hide is remembered apart from them
    for _ in range(60):
        _send(stack, user, seed, "view")
    assert hidden not in _products(stack, user)
    assert hidden not in _products(stack, user, k=100)
    popular = _products(stack, "someone-new", k=100)
    if hidden in popular:  # cold start answers popular items: still never the hidden one
        _send(stack, "someone-new", hidden, kind)
        assert hidden not in _products(stack, "someone-new", k=100)
    assert hidden in _products(stack, other)  # only that user's answers lose it
