"""One user's answer: candidates -> ranker over HTTP, one model version end to end, and the
fallbacks when a stage fails. `GET /recommend` and `POST /recommend/batch` both answer with it.

Within `GATEWAY_DEADLINE_SECONDS` whatever fails: ranker slow, down or refusing -> candidate
order (`degraded: ranker`); candidate stage slow or down -> the cached popular list, filtered
like the request asks and without what the user hid (`degraded: candidate`). Only before any
model was ever served is there nothing to answer with (None).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.gateway.downstream import StageError, Stages
from services.gateway.popular import PopularCache, pick
from services.gateway.rules import apply
from services.gateway.settings import GatewaySettings
from shared.events import EventStore
from shared.live_catalog import CatalogMirror, LiveItem
from shared.observability import DEGRADED
from shared.schemas.rules import Rules
from shared.schemas.serving import (
    CandidateResponse,
    CatalogItem,
    ItemFilters,
    ItemsResponse,
    RankRequest,
    RankResponse,
    RecommendedItem,
)

log = logging.getLogger(__name__)
# Titles and prices for an answer in candidate order are worth a short wait, not the deadline.
DETAILS_SECONDS = 0.5
# A popular answer leaves out what the user hid if Redis tells it this fast.
HIDDEN_SECONDS = 0.2
# Whom `warm` asks for: a user the model does not know (its answer is a cold start, thrown away).
WARM_USER = "recsys:warm-up"


@dataclass(frozen=True)
class Answer:
    items: list[RecommendedItem]
    version: int
    degraded: str | None = None  # "ranker", "candidate" or "overload"; None for a full answer


@dataclass
class Pipeline:
    stages: Stages
    popular: PopularCache
    catalog: CatalogMirror
    events: EventStore
    settings: GatewaySettings

    async def answer(
        self,
        user: str,
        k: int,
        filters: ItemFilters,
        segment: str | None = None,
        explain: bool = False,
        version: int | None = None,
    ) -> Answer | None:
        """The user's list, degraded if a stage fails; None if no model was ever served.
        `version`: answer with that model version (a batch keeps one for all its users)."""
        got = await self._two_stages(user, k, filters, segment, explain, version)
        if got is not None:
            await self.catalog.catch_up(got.items)
            return got
        # the candidate stage failed: popular items, never a hidden one
        got = self.from_popular(k, await self.without_hidden(user, filters), "candidate")
        if got is not None:
            DEGRADED.labels("gateway", "candidate").inc()
        return got

    async def warm(self, version: int, timeout: float) -> StageError | None:
        """Have both stages load `version` now (an answer for nobody, pinned to it), so that its
        first real answers are not the ones waiting for the load; the failure, or None."""
        request = {"user": WARM_USER, "n": 1, "version": version}
        try:
            stage_one = await self.stages.candidate.fetch(
                "POST", "/candidates", timeout, json=request
            )
            body = RankRequest.forward(WARM_USER, 1, False, stage_one)
            await self.stages.ranker.call("POST", "/rank", RankResponse, timeout, content=body)
        except StageError as exc:
            return exc
        return None

    async def with_rules(
        self, answer: Answer, rules: Rules, k: int, user: str, explain: bool
    ) -> Answer:
        """`answer` (ranked for `rules.fetch_size(k)`) cut to k under the business rules.
        Pinned products come from the answer, else the model's or the live catalog; never one
        the user hid."""
        pinned: dict[str, RecommendedItem] = {}
        if rules.pin:
            want = [p.product for p in rules.pin]
            have = {i.product: i for i in answer.items}
            missing = [p for p in want if p not in have]
            details = await self._details(missing, answer.version, DETAILS_SECONDS)
            hidden = set((await self.without_hidden(user, ItemFilters())).exclude)
            for product in want:
                if product in hidden:
                    continue
                if product in have:
                    pinned[product] = have[product]
                    continue
                known: CatalogItem | LiveItem | None = details.get(product)
                known = known or self.catalog.items.get(product)
                if known is not None:
                    pinned[product] = RecommendedItem(
                        product=product,
                        score=0.0,
                        price=known.price,
                        age=None,
                        title=known.title,
                        category=known.category,
                        reason="pinned",
                    )
        # The rules read what the live catalog says (a category changed since training counts
        # under its new name; a new product under its own).
        items = apply(self.catalog.overlay(answer.items), rules, k, pinned, explain)
        return Answer(items, answer.version, answer.degraded)

    async def without_hidden(self, user: str, filters: ItemFilters) -> ItemFilters:
        """`filters` excluding also what the user hid, as far as Redis tells it in time (a
        popular answer is a fallback: it does not wait for a Redis that is down)."""
        try:
            async with asyncio.timeout(HIDDEN_SECONDS):
                hidden = await self.events.hidden(user)
        except (redis.RedisError, TimeoutError) as exc:
            log.info("hidden products of a user unknown for a popular answer: %s", exc)
            return filters
        if not hidden:
            return filters
        return filters.model_copy(update={"exclude": [*filters.exclude, *hidden]})

    def from_popular(self, k: int, filters: ItemFilters, mode: str) -> Answer | None:
        """The cached popular items that pass `filters`, flagged `mode`; None while no list was
        ever cached."""
        cached = self.popular.current
        if cached is None:
            log.warning("no popular list is cached to answer with")
            return None
        items = pick(self.catalog.overlay(cached.items), k, filters)
        return Answer(items, cached.version, mode)

    async def _two_stages(
        self,
        user: str,
        k: int,
        filters: ItemFilters,
        segment: str | None,
        explain: bool,
        version: int | None,
    ) -> Answer | None:
        """Candidates, then the ranker over them; candidate order when the ranker fails; None
        when the candidate stage failed (the caller answers popular items)."""
        s, stages = self.settings, self.stages
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.deadline_seconds

        def time_left() -> float:
            return min(s.timeout_seconds, deadline - loop.time())

        request = {"user": user, "n": max(s.n_candidates, k), "segment": segment,
                   "filters": filters.model_dump(exclude_defaults=True)}  # fmt: skip
        if version is not None:
            request["version"] = version
        try:
            stage_one = await stages.candidate.fetch(
                "POST", "/candidates", time_left(), json=request
            )
        except StageError as exc:
            log.warning("candidate stage failed (%s)", exc)
            return None
        # Stage one's answer goes to the ranker as it came, unparsed: the ranker validates it.
        body = RankRequest.forward(user, k, explain, stage_one)
        try:
            ranked = await stages.ranker.call(
                "POST", "/rank", RankResponse, time_left(), content=body
            )
        except StageError as exc:
            return await self._candidate_order(k, stage_one, exc, time_left)
        stages.candidate.breaker.success()  # the ranker took its answer: it was a usable one
        self.popular.seen_version(ranked.version)
        return Answer(ranked.items, ranked.version)

    async def _candidate_order(
        self, k: int, stage_one: bytes, exc: StageError, time_left: Callable[[], float]
    ) -> Answer | None:
        """Ranker down, slow or refusing: stage one's order still answers, flagged as degraded,
        with the titles, prices and user age the candidate stage can still tell; None when
        stage one's answer is unusable too."""
        try:
            cands = self.stages.candidate.parse(stage_one, CandidateResponse)
        except StageError as invalid:  # the ranker refused it for that reason: popular items
            log.warning("candidate stage answered what the ranker refused: %s", invalid)
            return None
        log.warning("ranker failed (%s); answering in candidate order", exc)
        DEGRADED.labels("gateway", "ranker").inc()
        self.popular.seen_version(cands.version)
        c = cands.candidates
        products = c.products[:k]
        timeout = min(time_left(), DETAILS_SECONDS)
        details = await self._details(products, cands.version, timeout)
        items = []
        for product, score, reason in zip(products, c.scores[:k], c.reasons[:k], strict=True):
            d = details.get(product)
            items.append(
                RecommendedItem(
                    product=product,
                    score=score,
                    price=d.price if d else None,
                    age=cands.user_age,
                    title=d.title if d else None,
                    category=d.category if d else None,
                    reason=reason,
                )
            )
        return Answer(items, cands.version, "ranker")

    async def _details(
        self, products: list[str], version: int, timeout: float
    ) -> dict[str, CatalogItem]:
        """Catalog details of `products` from the candidate stage, if it still serves `version`;
        none when it cannot tell in time (the answer goes out without them)."""
        if not products:
            return {}
        try:
            found = await self.stages.candidate.call(
                "POST", "/items", ItemsResponse, timeout, json={"products": products}
            )
        except StageError as exc:
            log.info("no item details for a degraded answer: %s", exc)
            return {}
        if found.version != version:  # swapped in between: details of one version only
            return {}
        return {item.product: item for item in found.items}
