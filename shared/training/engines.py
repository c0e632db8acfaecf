"""Where the ranker is fitted: LightGBM in this process, or `lightgbm.dask` on a Dask cluster.

`TrainParams.engine` chooses; the rest of the pipeline does not change. Dask is an optional
extra (`pip install 'recsys[dask]'`), imported only when a job asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from shared.ml.stage_two.model import RankerEnsemble, RankingData, fit_ranker
from shared.schemas.training import TrainRequest
from shared.training.params import TrainParams

# (train lists, validation lists, num_boost_round, seed) -> a fitted ranker
FitRanker = Callable[[RankingData, RankingData, int, int], RankerEnsemble]


class EngineError(ValueError):
    """A training job asks for an engine this process cannot or may not use."""


def ranker_fit(params: TrainParams) -> FitRanker:
    """The function that fits the ranker for `params` (its `engine`, `scheduler` and
    `ranker_prior_weight`)."""
    prior_weight = params.ranker_prior_weight
    if params.engine == "local":
        return partial(fit_ranker, prior_weight=prior_weight, num_leaves=params.ranker_leaves)
    scheduler = params.scheduler
    if scheduler is None:
        raise EngineError("engine 'dask' needs a scheduler address (tcp://host:8786)")
    try:
        from shared.training.dask_engine import fit_ranker_dask
    except ImportError as exc:  # the `dask` extra is not installed
        raise EngineError(
            f"engine 'dask' needs dask[distributed]: pip install 'recsys[dask]' ({exc})"
        ) from exc

    def fit(
        train: RankingData, valid: RankingData, num_boost_round: int, seed: int
    ) -> RankerEnsemble:
        return fit_ranker_dask(
            train, valid, num_boost_round, seed, scheduler=scheduler, prior_weight=prior_weight
        )

    return fit


def resolve_engine(
    request: TrainRequest, configured_scheduler: str | None, *, any_scheduler: bool
) -> TrainRequest:
    """The request with its Dask scheduler filled in from the trainer's settings.

    A Dask client runs what the scheduler sends it back through pickle, so a job submitted over
    the API may only use the scheduler the operator configured (TRAINER_DASK_SCHEDULER);
    `any_scheduler` is for the local CLI, whose user names their own cluster.
    """
    params = request.params
    if params.engine != "dask":
        return request
    scheduler = params.scheduler or configured_scheduler
    if scheduler is None:
        raise EngineError("engine 'dask' needs a scheduler: pass one or set TRAINER_DASK_SCHEDULER")
    if not any_scheduler and scheduler != configured_scheduler:
        raise EngineError(
            f"this worker trains on Dask only through TRAINER_DASK_SCHEDULER, not {scheduler!r}"
        )
    # Validated again (address format) as it becomes part of the params.
    # Only the fields the request set: a knob written out is one the recipe search leaves alone.
    given = params.model_dump(exclude_unset=True)
    new_params = TrainParams.model_validate({**given, "scheduler": scheduler})
    return request.model_copy(update={"params": new_params})
