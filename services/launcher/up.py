"""`recsys up`: the whole stack as local processes, supervised, with a first model trained."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import typer
from pydantic import SecretStr
from rich.progress import Progress

from services.launcher.stack import Stack, StackSettings
from services.launcher.supervisor import Supervisor
from shared.console import console
from shared.datasets import synthetic
from shared.schemas.training import TrainJobStatus


def up(no_ui: bool = False, workdir: Path = Path("var")) -> None:
    """Start Redis, Celery worker and beat, candidate, ranker, gateway and UI; Ctrl-C stops."""
    stack = Stack(StackSettings(), workdir, with_ui=not no_ui)
    # Ctrl-C, and SIGTERM from a supervisor, stop everything; SIGINT is re-armed because a shell
    # starting us in the background would have set it to "ignore".
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    stop = threading.Event()
    supervising = threading.Thread(
        target=Supervisor(stack, _supervisor_log(workdir)).run, args=(stop,), daemon=True
    )
    try:
        console.print("starting Redis, Celery worker and beat, candidate, ranker, gateway, UI …")
        stack.start()
        supervising.start()  # from here on a process that dies is restarted, the rest serve on
        demo = Path("data/dummy_user_product_interactions.csv")
        synthetic.write_seed_csv(synthetic.generate(), demo)  # the demo data, to look at
        console.print(f"wrote {demo}")
        ensure_model(stack.gateway_url, stack.settings.admin_api_key)
        console.print(
            f"[green]ready[/green]\n  API   {stack.gateway_url}/recommend?user=U1\n"
            f"  docs  {stack.gateway_url}/docs\n  UI    {stack.ui_url}\n"
            f"  logs  {workdir}/logs/\nCtrl-C stops everything."
        )
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping …")
    except (RuntimeError, TimeoutError) as exc:  # a process never came up
        console.print(f"[red]error:[/red] {exc}\nstopping the rest …")
        raise typer.Exit(1) from None
    finally:
        stop.set()
        if supervising.is_alive():
            supervising.join()
        stack.stop()


def _refusal(gateway_url: str, wait: float = 20.0) -> str | None:
    """What /readyz says once the stages answer: None when they serve, the reason when a stage
    refused the current version, None too if they are still loading after `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        r = httpx.get(f"{gateway_url}/readyz", timeout=10)
        if r.status_code == 200:
            return None
        detail = str(r.json().get("detail", ""))
        if "refused" in detail:
            return detail
        time.sleep(0.2)
    return None


def _supervisor_log(workdir: Path) -> Callable[[str], None]:
    """Restarts are printed and appended to logs/supervisor.log with the time."""

    def log(line: str) -> None:
        console.print(f"[yellow]supervisor:[/yellow] {line}")
        with (workdir / "logs" / "supervisor.log").open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    return log


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def ensure_model(gateway_url: str, key: SecretStr | None, timeout: float = 600) -> None:
    """If no model is published yet, or the current one cannot be served by this code (trained
    by a version with other features), train one through the queue and wait for it."""
    models = httpx.get(f"{gateway_url}/models", timeout=10).json()
    if models["current"] is not None:
        refused = _refusal(gateway_url)
        if refused is None:
            console.print(f"serving model version {models['current']}")
            return
        console.print(f"[yellow]{refused}[/yellow]\ntraining a model this code can serve …")
    headers = {"X-API-Key": key.get_secret_value()} if key else None
    job = httpx.post(
        f"{gateway_url}/train", json={"dataset": "synthetic"}, headers=headers, timeout=10
    ).json()["job_id"]
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
