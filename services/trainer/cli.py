"""`recsys`: train and publish a model, generate the demo data, or run the whole stack locally."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress

from shared.schemas import DatasetName, TrainJobStatus, TrainParams, TrainRequest

app = typer.Typer(help="Two-stage product recommender.", no_args_is_help=True, add_completion=False)
console = Console()

DatasetOpt = Annotated[
    str, typer.Option("--dataset", help="synthetic | online-retail | movielens-100k | csv")
]
DataPathOpt = Annotated[
    Path | None, typer.Option("--data-path", help="file or folder of the dataset")
]


@app.command()
def train(dataset: DatasetOpt = "synthetic", data_path: DataPathOpt = None, seed: int = 42) -> None:
    """Train both stages in this process and publish a new model version to the registry."""
    from services.trainer.publish import train_and_publish
    from services.trainer.settings import get_settings
    from shared.datasets.loader import DatasetError
    from shared.registry import ModelRegistry
    from shared.settings import get_common_settings

    common = get_common_settings()
    request = TrainRequest(
        dataset=_dataset(dataset),
        data_path=str(data_path) if data_path else None,
        params=TrainParams(seed=seed),
    )
    with Progress(console=console) as bar:
        task = bar.add_task("training", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=stage)

        try:
            result = train_and_publish(
                request,
                ModelRegistry.from_settings(common),
                common.data_dir,
                progress,
                tolerance=get_settings().promotion_tolerance,
            )
        except DatasetError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    state = "now current" if result.promoted else "stored, not activated"
    console.print(f"model version {result.model_version}: {state} ({result.reason})")
    for key in ("ndcg@10", "popularity_ndcg@10", "precision@10", "recall@10", "auc"):
        console.print(f"  {key:<20} {result.metrics.get(key, float('nan')):.4f}")


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


@app.command()
def up(no_ui: bool = False, workdir: Path = Path("var")) -> None:
    """Start Redis, Celery worker and beat, candidate, ranker, gateway and UI; Ctrl-C stops."""
    from services.stack import Stack, StackSettings

    stack = Stack(StackSettings(), workdir, with_ui=not no_ui)
    try:
        console.print("starting Redis, Celery worker and beat, candidate, ranker, gateway, UI …")
        stack.start()
        generate_data(out=Path("data/dummy_user_product_interactions.csv"))
        ensure_model(stack.gateway_url)
        console.print(
            f"[green]ready[/green]\n  API   {stack.gateway_url}/recommend?user=U1\n"
            f"  docs  {stack.gateway_url}/docs\n  UI    {stack.ui_url}\n"
            f"  logs  {workdir}/logs/\nCtrl-C stops everything."
        )
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping …")
    finally:
        stack.stop()


def ensure_model(gateway_url: str, timeout: float = 600) -> None:
    """If no model is published yet, train the first one through the queue and wait for it."""
    models = httpx.get(f"{gateway_url}/models", timeout=10).json()
    if models["current"] is not None:
        console.print(f"serving model version {models['current']}")
        return
    job = httpx.post(f"{gateway_url}/train", json={"dataset": "synthetic"}, timeout=10).json()[
        "job_id"
    ]
    deadline = time.monotonic() + timeout
    with Progress(console=console) as bar:
        task = bar.add_task("training the first model", total=1.0)
        while time.monotonic() < deadline:
            status = TrainJobStatus.model_validate(
                httpx.get(f"{gateway_url}/train/{job}", timeout=10).json()
            )
            bar.update(task, completed=status.progress, description=status.stage or status.state)
            if status.state == "FAILURE":
                raise RuntimeError(f"first training failed: {status.error}")
            if status.state == "SUCCESS":
                break
            time.sleep(0.5)
    # Training published; wait until the services swapped to it.
    while (
        time.monotonic() < deadline
        and httpx.get(f"{gateway_url}/readyz", timeout=10).status_code != 200
    ):
        time.sleep(0.2)


def _dataset(name: str) -> DatasetName:
    allowed: tuple[DatasetName, ...] = ("synthetic", "online-retail", "movielens-100k", "csv")
    for d in allowed:
        if d == name:
            return d
    raise typer.BadParameter(f"unknown dataset {name!r}; choose one of {', '.join(allowed)}")
