"""Train, gate and publish: the one function behind both the Celery task and `recsys train`."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from services.trainer.erasure import erased_hashes, without_erased
from services.trainer.ingest import events_dir, load_events, timeline_gap, with_events
from services.trainer.live_data import (
    read_live_catalog,
    read_profiles,
    with_live_catalog,
    with_profiles,
)
from services.trainer.settings import TrainerSettings
from shared.datasets.loader import DatasetError, load_with_report
from shared.redis_conn import sync_client
from shared.registry import ModelRegistry
from shared.schemas.training import CsvOptions, TrainRequest, TrainResult
from shared.settings import get_common_settings
from shared.training.engines import resolve_engine
from shared.training.pipeline import ProgressFn
from shared.training.run import run_training
from shared.training.search_space import WarmStart

log = logging.getLogger(__name__)
GATE_METRIC = "valid_ndcg@10"


def data_identity(request: TrainRequest) -> dict[str, object]:
    """What makes two validation scores comparable: the same data, whatever the model knobs."""
    identity: dict[str, object] = {"dataset": request.dataset, "data_path": request.data_path}
    if request.dataset == "synthetic":
        p = request.params
        identity.update(n_users=p.n_users, n_products=p.n_products, n_days=p.n_days, seed=p.seed)
    if request.dataset == "csv":  # other columns or event weights read other data
        csv = (request.csv or CsvOptions()).model_dump(mode="json", exclude_none=True)
        if csv["header"]:  # as versions trained before the option were identified
            del csv["header"]
        identity["csv"] = csv
    if request.params.shuffle_links_seed is not None:  # other links, other validation scores
        identity["shuffle_links_seed"] = request.params.shuffle_links_seed
    return identity


def promotion_decision(
    registry: ModelRegistry, request: TrainRequest, metrics: dict[str, float], tolerance: float
) -> tuple[bool, str]:
    """Promote unless the current model, trained on the same data, validates clearly better."""
    current = registry.current_version()
    if current is None:
        return True, "first model"
    old = registry.manifest(current)
    if old.params.get("data") != data_identity(request):
        return True, f"current version {current} was trained on other data"
    new_score, old_score = (
        metrics.get(GATE_METRIC, math.nan),
        old.metrics.get(GATE_METRIC, math.nan),
    )
    if math.isnan(old_score):
        return True, f"current version {current} has no {GATE_METRIC}"
    if math.isnan(new_score) or new_score < old_score - tolerance:
        return False, (
            f"{GATE_METRIC} {new_score:.4f} is worse than version {current}'s "
            f"{old_score:.4f} beyond tolerance {tolerance}"
        )
    return True, f"{GATE_METRIC} {new_score:.4f} vs version {current}'s {old_score:.4f}"


def warm_start(registry: ModelRegistry, request: TrainRequest) -> WarmStart | None:
    """The recipe of the version serving, where it was trained on the same data: a retrain's
    search tries it early, so that it is not lost to a shorter budget or an unlucky draw (the
    gate below compares the two versions on the same validation metric)."""
    current = registry.current_version()
    if current is None:
        return None
    old = registry.manifest(current)
    recipe = old.params.get("recipe")
    if old.params.get("data") != data_identity(request) or not isinstance(recipe, dict):
        return None  # other data, or a version from before recipes were recorded
    return WarmStart(current, recipe)


def train_and_publish(
    request: TrainRequest,
    registry: ModelRegistry,
    data_root: Path,
    progress: ProgressFn,
    settings: TrainerSettings,
    allow_outside: bool = False,
) -> TrainResult:
    """`allow_outside`: only local callers (the CLI) may read files outside `data_root` (or name
    their own Dask scheduler)."""
    request = resolve_engine(request, settings.dask_scheduler, any_scheduler=allow_outside)
    data, report = load_with_report(request, data_root, allow_outside=allow_outside)
    log.info("%s", report.summary())
    common = get_common_settings()
    gap: str | None = None  # the events' timeline, where it is not the dataset's
    if request.include_events:
        events = load_events(events_dir())
        log.info("merging %d ingested events into the training data", len(events))
        # without times the split is random, not by windows: no timeline to be on
        if report.has_time and (gap := timeline_gap(data, events, request.params.test_days)):
            log.warning("%s", gap)
        data = with_events(data, events, common.event_weights)
    data = with_live_catalog(data, *read_live_catalog(common.redis_url, common.key_prefix))
    data = with_profiles(data, read_profiles(common.redis_url, common.key_prefix))
    client = sync_client(common.redis_url)
    try:
        data = without_erased(data, erased_hashes(client, common.key_prefix))
    finally:
        client.close()
    try:
        output = run_training(
            data, request.params, progress, report.has_time, warm_start(registry, request)
        )
    except ValueError as exc:  # e.g. too little data in those windows: the job says why
        if gap is None:
            raise
        # a DatasetError stays one (the CLI's line, not a traceback); any other error, a
        # ValueError: not every subclass is made from a message alone
        kind = DatasetError if isinstance(exc, DatasetError) else ValueError
        raise kind(f"{exc}; {gap}") from exc
    promote, reason = promotion_decision(
        registry, request, output.metrics, settings.promotion_tolerance
    )
    manifest, made_current = registry.publish(
        output.artifacts,
        dataset=request.dataset,
        params={
            **request.model_dump(mode="json"),
            # the request as sent: a retrain replays it, searching what it left to the search
            "request": request.as_sent(),
            "data": data_identity(request),
            # what was trained: the request's params as tuning set them
            "recipe": (output.params or request.params).model_dump(mode="json"),
        },
        metrics=output.metrics,
        activate=promote,
        evaluation=output.evaluation,
        tuning=output.tuning,
    )
    if promote and not made_current:
        reason = "a newer version was published meanwhile"
    log.info("published model version %s (current: %s): %s", manifest.version, made_current, reason)
    pruned = registry.prune(settings.keep_versions)
    if pruned:
        log.info("retention: deleted versions %s", pruned)
    progress("done", 1.0)
    return TrainResult(
        model_version=manifest.version, promoted=made_current, reason=reason, metrics=output.metrics
    )
