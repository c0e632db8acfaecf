"""`recsys`: train and publish a model, generate the demo data, or run the whole stack locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import Progress

from services.launcher.up import up
from services.trainer.cli_catalog import app as catalog_app
from services.trainer.cli_models import app as models_app
from services.trainer.cli_recommend import recommend
from shared.console import console
from shared.schemas.training import CsvOptions, DatasetName, TrainRequest, parse_event_weights
from shared.training.params import TrainParams

app = typer.Typer(help="Two-stage product recommender.", no_args_is_help=True, add_completion=False)
app.add_typer(models_app, name="models")
app.add_typer(catalog_app, name="catalog")
app.command()(recommend)
app.command()(up)

DatasetOpt = Annotated[
    str, typer.Option("--dataset", help="synthetic | online-retail | movielens-100k | csv")
]
DataPathOpt = Annotated[
    Path | None, typer.Option("--data-path", help="file or folder of the dataset")
]


HeaderOpt = Annotated[
    bool,
    typer.Option(
        "--header/--no-header",
        help="csv: line 1 names the columns; --no-header: it is data, and the columns are "
        "named by position, e.g. --user-col 1 --item-col 2 (an item table's too, where its "
        "line 1 is an item: --title-col 2)",
    ),
]
UserCol = Annotated[str | None, typer.Option(help="csv: the user column")]
ItemCol = Annotated[str | None, typer.Option(help="csv: the item column")]
RatingCol = Annotated[str | None, typer.Option(help="csv: a rating/strength column")]
TimeCol = Annotated[str | None, typer.Option(help="csv: a timestamp column")]
ItemsPath = Annotated[Path | None, typer.Option(help="csv: an item table (title/category/price)")]
TitleCol = Annotated[str | None, typer.Option(help="csv: item titles (events or item table)")]
CategoryCol = Annotated[
    str | None, typer.Option(help="csv: item categories (events or item table)")
]
PriceCol = Annotated[str | None, typer.Option(help="csv: item prices (events or item table)")]
SegmentCol = Annotated[str | None, typer.Option(help="csv: a user segment column, e.g. country")]
EventCol = Annotated[
    str | None, typer.Option(help="csv: the event type column (view, purchase ...)")
]
EventWeights = Annotated[
    str | None,
    typer.Option(
        metavar="TYPE=WEIGHT,...",
        help="csv: each event type's strength, e.g. view=1,addtocart=3,transaction=5 "
        "(default: RECSYS_EVENT_WEIGHTS, the live events' weights)",
    ),
]
RankerModelsOpt = Annotated[
    int, typer.Option(min=1, max=10, help="LightGBM rankers averaged (fewer: faster training)")
]
DEFAULT_RANKER_MODELS: int = TrainParams.model_fields["ranker_models"].default
GraphLowrankOpt = Annotated[
    int,
    typer.Option(min=0, max=256, help="dimensions of stage one's low-rank filter; 0 turns it off"),
]
DEFAULT_GRAPH_LOWRANK: int = TrainParams.model_fields["graph_lowrank"].default
RankerPriorOpt = Annotated[
    float,
    typer.Option(
        min=0, max=20, help="the ranker boosts from this x stage one's score; 0: from zero"
    ),
]
DEFAULT_RANKER_PRIOR: float = TrainParams.model_fields["ranker_prior_weight"].default
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        metavar="KEY=VALUE",
        help="any training parameter (TrainParams, as in POST /train), repeatable; "
        "e.g. --param graph_session_minutes=1. Applied after the options above.",
    ),
]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, true, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# CsvOptions' column fields, in the order the commands pass their options to `_request`.
CSV_COLUMNS = (
    "user_col", "item_col", "rating_col", "time_col",
    "title_col", "category_col", "price_col", "segment_col", "event_col",
)  # fmt: skip


def _request(
    dataset: str,
    data_path: Path | None,
    params: TrainParams,
    items_path: Path | None,
    event_weights: str | None,
    header: bool,
    *column_options: str | None,
) -> TrainRequest:
    """A TrainRequest from CLI options; local paths are resolved against the current folder."""
    columns = dict(zip(CSV_COLUMNS, column_options, strict=True))
    csv = None
    if dataset == "csv":
        if not columns["user_col"] or not columns["item_col"]:
            raise typer.BadParameter("--dataset csv needs --user-col and --item-col")
        try:
            csv = CsvOptions(
                header=header,
                **{name: value for name, value in columns.items() if value is not None},
                items_path=str(items_path.resolve()) if items_path else None,
                event_weights=parse_event_weights(event_weights) if event_weights else None,
            )
        except ValidationError as e:  # its own text carries the input and a link: the reasons only
            reasons = [err["msg"].removeprefix("Value error, ") for err in e.errors()]
            raise typer.BadParameter("; ".join(reasons)) from e
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
    return TrainRequest(
        dataset=_dataset(dataset),
        data_path=str(data_path.resolve()) if data_path else None,
        params=params,
        csv=csv,
    )


@app.command()
def train(
    dataset: DatasetOpt = "synthetic",
    data_path: DataPathOpt = None,
    test_days: Annotated[int, typer.Option(min=1, max=365, help="held-out days for metrics")] = 14,
    header: HeaderOpt = True,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    rating_col: RatingCol = None,
    time_col: TimeCol = None,
    items_path: ItemsPath = None,
    title_col: TitleCol = None,
    category_col: CategoryCol = None,
    price_col: PriceCol = None,
    segment_col: SegmentCol = None,
    event_col: EventCol = None,
    event_weights: EventWeights = None,
    seed: int = 42,
    engine: Annotated[
        str, typer.Option(help="where the ranker is fitted: local | dask (lightgbm.dask)")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="dask: the scheduler, tcp://host:8786 (default TRAINER_DASK_SCHEDULER)"),
    ] = None,
    if_no_model: Annotated[
        bool, typer.Option(help="train only if no model is current yet (first start, containers)")
    ] = False,
    ranker_models: RankerModelsOpt = DEFAULT_RANKER_MODELS,
    graph_lowrank: GraphLowrankOpt = DEFAULT_GRAPH_LOWRANK,
    ranker_prior_weight: RankerPriorOpt = DEFAULT_RANKER_PRIOR,
    param: ParamOpt = None,
) -> None:
    """Train both stages and publish a new model version; the ranker in this process or on Dask."""
    from services.trainer.publish import train_and_publish
    from services.trainer.settings import get_settings
    from shared.datasets.loader import DatasetError
    from shared.registry import ModelRegistry
    from shared.settings import get_common_settings
    from shared.training.comparison import tuning_line
    from shared.training.engines import EngineError

    common = get_common_settings()
    registry = ModelRegistry.from_settings(common)
    if if_no_model and (current := registry.current_version()) is not None:
        console.print(f"model version {current} is current: nothing to train")
        return
    params = _train_params(
        param,
        seed=seed,
        test_days=test_days,
        engine=engine,
        scheduler=scheduler,
        ranker_models=ranker_models,
        graph_lowrank=graph_lowrank,
        ranker_prior_weight=ranker_prior_weight,
    )
    request = _request(
        dataset, data_path, params, items_path, event_weights, header,
        user_col, item_col, rating_col, time_col, title_col, category_col, price_col, segment_col,
        event_col,
    )  # fmt: skip
    with Progress(console=console) as bar:
        task = bar.add_task("training", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=stage)

        try:
            result = train_and_publish(
                request,
                registry,
                common.data_dir,
                progress,
                get_settings(),
                allow_outside=True,
            )
        except (DatasetError, EngineError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    state = "now current" if result.promoted else "stored, not activated"
    console.print(f"model version {result.model_version}: {state} ({result.reason})")
    for key in ("ndcg@10", "popularity_ndcg@10", "precision@10", "recall@10", "ranker_auc"):
        console.print(f"  {key:<20} {result.metrics.get(key, float('nan')):.4f}")
    tuning = registry.manifest(result.model_version).tuning
    if tuning is not None:
        console.print(tuning_line(tuning))


def _train_params(overrides: list[str] | None, **values: object) -> TrainParams:
    """TrainParams from the command's options, then its `--param` pairs; refused as a usage
    error (exit 2, what is wrong) when pydantic refuses them."""
    # Options left at their defaults are not "set": training's tuner may choose those knobs,
    # while every value the user gave (as an option or a --param) stays as given.
    defaults = TrainParams()
    given = {k: v for k, v in values.items() if v != getattr(defaults, k)}
    try:
        return TrainParams.model_validate({**given, **parse_overrides(overrides or [])})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option("--out", help="where to write the JSON results")],
    dataset: DatasetOpt = "synthetic",
    data_path: DataPathOpt = None,
    protocol: Annotated[str, typer.Option(help="temporal | msr")] = "temporal",
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 10,
    test_days: Annotated[int, typer.Option(min=1, max=365)] = 30,
    candidates: Annotated[int, typer.Option(min=10, max=2000, help="stage-one list size")] = 200,
    report: Annotated[
        Path | None, typer.Option(help="also write an HTML report with plots")
    ] = None,
    header: HeaderOpt = True,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    rating_col: RatingCol = None,
    time_col: TimeCol = None,
    items_path: ItemsPath = None,
    title_col: TitleCol = None,
    category_col: CategoryCol = None,
    price_col: PriceCol = None,
    segment_col: SegmentCol = None,
    event_col: EventCol = None,
    event_weights: EventWeights = None,
    seed: int = 42,
    ranker_models: RankerModelsOpt = DEFAULT_RANKER_MODELS,
    graph_lowrank: GraphLowrankOpt = DEFAULT_GRAPH_LOWRANK,
    ranker_prior_weight: RankerPriorOpt = DEFAULT_RANKER_PRIOR,
    param: ParamOpt = None,
) -> None:
    """Fit popularity, item-kNN, EASE, ALS and the two-stage model on one split; compare them."""
    from shared.datasets.loader import DatasetError, load_with_report
    from shared.settings import get_common_settings
    from shared.training.comparison import print_table, run_benchmark, write_outputs

    if protocol not in ("temporal", "msr"):
        raise typer.BadParameter(f"unknown protocol {protocol!r}; choose temporal or msr")
    params = _train_params(
        param,
        test_days=test_days,
        n_candidates=candidates,
        seed=seed,
        ranker_models=ranker_models,
        graph_lowrank=graph_lowrank,
        ranker_prior_weight=ranker_prior_weight,
    )
    request = _request(
        dataset, data_path, params, items_path, event_weights, header,
        user_col, item_col, rating_col, time_col, title_col, category_col, price_col, segment_col,
        event_col,
    )  # fmt: skip
    params = request.params
    try:
        # A local user may name any file of theirs; API-triggered jobs stay inside the data root.
        data, load = load_with_report(request, get_common_settings().data_dir, allow_outside=True)
        console.print(load.summary())
        # loaded, it may still be too little to fit a ranker on: the same one-line error
        result, ev = run_benchmark(data, protocol, k, params, load.has_time, console)
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print_table(result, console)
    write_outputs(result, ev, out, report)
    console.print(f"wrote {out}" + (f" and {report}" if report else ""))


@app.command("generate-data")
def generate_data(
    out: Path = Path("data/dummy_user_product_interactions.csv"),
    n_users: int = 600,
    n_products: int = 300,
    seed: int = 42,
) -> None:
    """Write the synthetic demo dataset as a CSV to look at."""
    from shared.datasets import synthetic

    synthetic.write_seed_csv(
        synthetic.generate(n_users=n_users, n_products=n_products, seed=seed), out
    )
    console.print(f"wrote {out}")


def main() -> None:
    """The `recsys` command: `app`, with Redis out of reach said in a line, not a traceback
    (training, models and the catalog live there)."""
    from redis.exceptions import ConnectionError as RedisUnreachable
    from redis.exceptions import TimeoutError as RedisTimeout

    try:
        app()
    except (RedisUnreachable, RedisTimeout) as exc:  # its text names host and port, no password
        console.print(
            f"[red]error:[/red] Redis is out of reach ({exc}): start the stack with `make run`, "
            "or point RECSYS_REDIS_URL at a running Redis"
        )
        raise SystemExit(2) from None


def _dataset(name: str) -> DatasetName:
    allowed: tuple[DatasetName, ...] = ("synthetic", "online-retail", "movielens-100k", "csv")
    for d in allowed:
        if d == name:
            return d
    raise typer.BadParameter(f"unknown dataset {name!r}; choose one of {', '.join(allowed)}")
