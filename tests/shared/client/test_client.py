"""The client on a scripted transport: what it sends (URL-encoded ids, filters, the admin key,
bodies), what it makes of the answers (headers, statuses -> exceptions), its life cycle. Both
clients send the same request for every method."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.client import (
    ApiError,
    AsyncRecsysClient,
    AuthError,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    RecsysClient,
    RecsysConnectionError,
    RetryableError,
    ServerError,
    UnexpectedResponseError,
)
from shared.client.endpoints import ENDPOINTS
from shared.client.errors import parse_retry_after
from shared.live_catalog import ItemIn, ItemPatch
from shared.redis_conn import free_port
from shared.schemas.experiments import Assignments, ExperimentIn, PromoteRequest, StopRequest
from shared.schemas.serving import BatchLine, BatchRequest, EventIn, ItemFilters
from shared.schemas.training import TrainRequest
from shared.users import UserProfile

BASE = "http://gateway.test"
ODD_ID = "KUNDE 0042 B@zoë"
ODD_ID_IN_PATH = "KUNDE%200042%20B%40zo%C3%AB"
EXPERIMENT = {"name": "ab", "arms": [{"name": "a", "version": 1, "share": 0.5},
                                    {"name": "b", "version": 2, "share": 0.5}]}  # fmt: skip
ITEM = {"product": "P1", "score": 0.5, "price": 9.5, "age": None, "reason": "similar_to:P2"}

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: Any) -> RecsysClient:
    return RecsysClient(BASE, http=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs)


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query)


# One call of every method, for both clients: the name -> (args, kwargs).
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "recommend": (
        (ODD_ID, 5),
        {
            "category": ["books", "Küche & Haus"],
            "min_price": 1.5,
            "exclude": ["P1", "P 2"],
            "explain": True,
            "boost_category": ["books"],
            "bury_product": [ODD_ID],
            "diversity": 0.3,
            "pin": {ODD_ID: 2},
        },
    ),
    "recommend_batch": (
        (BatchRequest(users=[ODD_ID, "U2"], k=3, filters=ItemFilters(category=["books"])),),
        {},
    ),
    "popular": ((3,), {"window": "7d", "max_price": 20.0}),
    "similar": ((ODD_ID,), {"k": 4, "category": "Küche & Haus"}),
    "list_items": ((), {"category": "books", "cursor": "42", "limit": 10}),
    "get_item": ((ODD_ID,), {}),
    "put_item": ((ODD_ID, ItemIn(title="Mug", price=3.0)), {}),
    "patch_item": ((ODD_ID, ItemPatch(available=False)), {}),
    "delete_item": ((ODD_ID,), {}),
    "get_user": ((ODD_ID,), {}),
    "put_user": ((ODD_ID, UserProfile(age=30, segment="DE")), {}),
    "delete_user": ((ODD_ID,), {}),
    "user_history": ((ODD_ID,), {}),
    "send_event": ((EventIn(user=ODD_ID, product="P1", type="click"),), {}),
    "train": ((TrainRequest(dataset="synthetic", include_events=True),), {}),
    "train_jobs": ((), {"limit": 5}),
    "train_status": (("job-1",), {}),
    "models": ((), {}),
    "model": ((3,), {}),
    "activate": ((3,), {}),
    "estimate": ((3,), {"m": 5, "draws": 100}),
    "stats": ((), {}),
    "online_metrics": ((), {"window_hours": 48, "version": 2}),
    "create_experiment": ((ExperimentIn.model_validate(EXPERIMENT),), {}),
    "experiments": ((), {}),
    "experiment": (("ab",), {}),
    "stop_experiment": (("ab",), {"request": StopRequest(reason="enough")}),
    "promote_experiment": (("ab",), {"request": PromoteRequest(arm="b")}),
    "experiment_assignments": (("ab",), {"request": Assignments(users=["u 1", "ü@x"])}),
    "health": ((), {}),
    "ready": ((), {}),
}


def test_every_method_is_called_here() -> None:
    assert set(CALLS) == {e.name for e in ENDPOINTS}


def _recorded(request: httpx.Request) -> tuple[str, str, object, str | None]:
    body = json.loads(request.content) if request.content else None
    return request.method, str(request.url), body, request.headers.get("X-API-Key")


def test_both_clients_send_the_same_request_for_every_method() -> None:
    sent: dict[str, list[Any]] = {"sync": [], "async": []}

    def recorder(kind: str) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            sent[kind].append(_recorded(request))
            return httpx.Response(404, json={"detail": "scripted"})

        return handle

    with client(recorder("sync"), api_key="k") as sync:
        for name, (args, kwargs) in CALLS.items():
            with pytest.raises(NotFoundError):
                getattr(sync, name)(*args, **kwargs)

    async def run_async() -> None:
        transport = httpx.MockTransport(recorder("async"))
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncRecsysClient(BASE, api_key="k", http=http) as aio,
        ):
            for name, (args, kwargs) in CALLS.items():
                with pytest.raises(NotFoundError):
                    await getattr(aio, name)(*args, **kwargs)

    asyncio.run(run_async())
    assert sent["sync"] == sent["async"]
    assert all(key == "k" for *_, key in sent["sync"])
    urls = [url for _, url, _, _ in sent["sync"]]
    assert all(url.startswith(BASE + "/") for url in urls)
    # every id in a path is encoded whole: nothing of it reads as another path segment
    with_id = [u for u in urls if ODD_ID_IN_PATH in u]
    assert len(with_id) == 9, urls
    assert f"{BASE}/items/{ODD_ID_IN_PATH}/similar?k=4&category=K%C3%BCche+%26+Haus" in urls


def test_recommend_sends_the_filters_and_reads_the_headers() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"X-Model-Version": "7", "X-Degraded": "ranker"}
        return httpx.Response(200, json=[ITEM], headers=headers)

    with client(handle) as c:
        got = c.recommend(
            "zoë.müller@example.com",
            3,
            category="books",
            min_price=1,
            max_price=9.5,
            exclude=["P1", "P 2"],
            segment="DE",
            explain=True,
        )
        c.recommend("U1")
    assert got.version == 7 and got.degraded == "ranker"
    assert [i.product for i in got.items] == ["P1"]
    assert query(seen[0]) == {
        "user": ["zoë.müller@example.com"],
        "k": ["3"],
        "category": ["books"],
        "min_price": ["1"],
        "max_price": ["9.5"],
        "exclude": ["P1,P 2"],
        "segment": ["DE"],
        "explain": ["true"],
    }
    assert query(seen[1]) == {"user": ["U1"], "k": ["10"]}  # nothing else unless asked
    assert "X-API-Key" not in seen[0].headers


def test_rules_and_several_categories_are_repeated_parameters() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with client(handle) as c:
        c.recommend(
            "U1",
            category=["books", "toys"],
            boost_category=["books"],
            bury_category=["toys"],
            boost_product=["P1", "P 2"],
            bury_product=["P3"],
            max_per_category=2,
            diversity=0.5,
            pin={"zoë@shop": 1, "P9": 3},
        )
        c.popular(category="books")
    assert query(seen[0]) == {
        "user": ["U1"],
        "k": ["10"],
        "category": ["books", "toys"],
        "boost_category": ["books"],
        "bury_category": ["toys"],
        "boost_product": ["P1", "P 2"],
        "bury_product": ["P3"],
        "max_per_category": ["2"],
        "diversity": ["0.5"],
        "pin": ["zoë@shop@1", "P9@3"],  # the gateway splits at the last '@'
    }
    assert query(seen[1]) == {"k": ["10"], "window": ["1d"], "category": ["books"]}


def test_a_list_answer_without_headers_has_no_version() -> None:
    with client(answer(200, [ITEM])) as c:
        got = c.popular()
    assert got.version is None and got.degraded is None


def test_exclude_takes_a_list_of_ids() -> None:
    with client(answer(200, [])) as c:
        with pytest.raises(TypeError):
            c.recommend("U1", exclude="P1")
        with pytest.raises(ValueError, match="','"):
            c.similar("P1", exclude=["P1,P2"])
        with pytest.raises(TypeError):
            c.recommend("U1", boost_product="P1")


def test_bodies_hold_what_was_set() -> None:
    bodies: list[object] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(404, json={"detail": "scripted"})

    with client(handle) as c:
        for call in (
            lambda: c.patch_item("P1", ItemPatch(price=2.5)),
            lambda: c.train(),
            lambda: c.send_event(EventIn(user="U1", product="P1", type="hide")),
        ):
            with pytest.raises(NotFoundError):
                call()
    assert bodies == [{"price": 2.5}, {}, {"user": "U1", "product": "P1", "type": "hide"}]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ClientError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ClientError),
        (413, ClientError),
        (422, InvalidRequestError),
        (429, RetryableError),
        (500, ServerError),
        (502, ServerError),
        (503, RetryableError),
    ],
)
def test_error_statuses_raise_by_what_can_be_done(status: int, kind: type[ApiError]) -> None:
    with client(answer(status, {"detail": "why"})) as c, pytest.raises(kind) as raised:
        c.get_item("P1")
    err = raised.value
    assert type(err) is kind
    assert (err.status_code, err.detail, err.method) == (status, "why", "GET")
    assert err.url == f"{BASE}/items/P1" and str(err) == f"HTTP {status}: why"
    assert isinstance(err, ClientError) == (400 <= status < 500 and status != 429)


def test_validation_errors_keep_the_list_and_read_as_one_line() -> None:
    detail = [
        {"loc": ["query", "k"], "msg": "Input should be greater than or equal to 1", "type": "x"},
        {"loc": ["query", "user"], "msg": "String should match pattern", "type": "y"},
    ]
    with client(answer(422, {"detail": detail})) as c, pytest.raises(InvalidRequestError) as e:
        c.recommend("U1", k=0)
    assert e.value.detail == detail
    assert e.value.message == (
        "Input should be greater than or equal to 1; String should match pattern"
    )


def test_retryable_errors_say_when_to_retry() -> None:
    busy = answer(429, {"detail": "busy"}, {"Retry-After": "30"})
    with client(busy) as c, pytest.raises(RetryableError) as e:
        c.train()
    assert e.value.retry_after == 30.0 and e.value.detail == "busy"
    with client(answer(503, {"detail": "no model"})) as c, pytest.raises(RetryableError) as e:
        c.recommend("U1")
    assert e.value.retry_after is None


def test_retry_after_as_a_date_or_nonsense() -> None:
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(datetime(2024, 6, 1, 12, 0, 45, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 45.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0


def test_an_error_page_that_is_not_json_is_the_detail() -> None:
    page = lambda request: httpx.Response(502, text="<html>Bad Gateway</html>")  # noqa: E731
    with client(page) as c, pytest.raises(ServerError) as e:
        c.models()
    assert e.value.detail == "<html>Bad Gateway</html>"


def test_a_success_with_another_body_is_unexpected() -> None:
    with client(answer(200, {"not": "a model"})) as c, pytest.raises(UnexpectedResponseError):
        c.models()


def test_network_errors_raise_a_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client(refuse) as c, pytest.raises(RecsysConnectionError) as e:
        c.health()
    assert e.value.base_url == BASE
    assert str(e.value) == f"gateway at {BASE} is not reachable: connection refused"


def test_a_gateway_nobody_listens_on() -> None:
    closed_port_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused
    with RecsysClient(closed_port_url, timeout=2) as c, pytest.raises(RecsysConnectionError):
        c.health()

    async def go() -> None:
        async with AsyncRecsysClient(closed_port_url, timeout=2) as c:
            await c.health()

    with pytest.raises(RecsysConnectionError):
        asyncio.run(go())


def test_timeouts_are_connection_errors() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client(slow) as c, pytest.raises(RecsysConnectionError, match="timed out"):
        c.stats()


def test_the_timeout_given_is_the_one_used() -> None:
    timeouts: list[object] = []

    def handle(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={"status": "ok", "service": "gateway"})

    with client(handle, timeout=1.5) as c:
        c.health()
    assert timeouts == [httpx.Timeout(1.5).as_dict()]


def test_an_owned_client_is_closed_an_injected_one_is_not() -> None:
    with RecsysClient(BASE) as owned:
        pass
    assert owned._http.is_closed
    http = httpx.Client(transport=httpx.MockTransport(answer(200, {})))
    with RecsysClient(BASE, http=http):
        pass
    assert not http.is_closed
    http.close()


def test_the_base_url_may_end_with_a_slash() -> None:
    urls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"status": "ok", "service": "gateway"})

    with RecsysClient(BASE + "/", http=httpx.Client(transport=httpx.MockTransport(handle))) as c:
        assert c.health().service == "gateway"
    assert urls == [f"{BASE}/healthz"]


def _lines(*users: str) -> bytes:
    lines = [{"user": u, "version": 3, "items": [ITEM], "degraded": None} for u in users]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_a_batch_is_read_line_by_line() -> None:
    bodies: list[object] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        headers = {"content-type": "application/x-ndjson"}
        return httpx.Response(200, content=_lines("U1", ODD_ID) + b"\n", headers=headers)

    request = BatchRequest(users=["U1", ODD_ID], version=3)
    with client(handle) as c:
        whole = c.recommend_batch(request)
        streamed = list(c.iter_recommend_batch(request))

    async def go() -> list[BatchLine]:
        transport = httpx.MockTransport(handle)
        async with AsyncRecsysClient(BASE, http=httpx.AsyncClient(transport=transport)) as c:
            return [line async for line in c.iter_recommend_batch(request)]

    assert whole == streamed == asyncio.run(go())
    assert [line.user for line in whole] == ["U1", ODD_ID]
    assert whole[0].items[0].product == "P1" and whole[0].version == 3
    assert bodies == [{"users": ["U1", ODD_ID], "version": 3}] * 3  # only what was set


def test_a_refused_batch_raises_before_any_line() -> None:
    too_many = {"detail": [{"loc": ["body", "users"], "msg": "at most 1000", "type": "x"}]}
    with client(answer(422, too_many)) as c, pytest.raises(InvalidRequestError) as e:
        next(c.iter_recommend_batch(BatchRequest(users=["U1"])))
    assert e.value.message == "at most 1000"


def test_a_batch_cut_short_keeps_the_lines_that_came() -> None:
    class CutStream(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield _lines("U1")
            raise httpx.RemoteProtocolError("peer closed connection")

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CutStream())

    got: list[str] = []
    with client(handle) as c, pytest.raises(RecsysConnectionError, match="peer closed"):
        for line in c.iter_recommend_batch(BatchRequest(users=["U1", "U2"])):
            got.append(line.user)
    assert got == ["U1"]
