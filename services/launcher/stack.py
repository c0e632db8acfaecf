"""Start the whole system as local processes: Redis, Celery worker and beat, three services, UI.

Used by `make run` (`recsys up`) and by the integration tests, so both exercise the same wiring.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import ui
from shared.redis_conn import free_ports, redis_url, start_redis_server


class StackSettings(BaseSettings):
    """Ports of the local stack; the same variables configure docker compose (see .env.example)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_port: int = 6379
    gateway_port: int = 8000
    candidate_port: int = 8001
    ranker_port: int = 8002
    ui_port: int = 8501
    host: str = "127.0.0.1"
    # The Redis this stack starts requires this password when set (clients get it in the URL).
    redis_password: str | None = None
    # On SIGTERM a service stops accepting, finishes in-flight requests for up to this long.
    graceful_shutdown_seconds: int = 10
    # The gateway's admin key (the gateway reads the same variables): `recsys up` sends it with
    # the first training request.
    admin_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GATEWAY_ADMIN_API_KEY", "RECSYS_ADMIN_API_KEY"),
    )

    @field_validator("admin_api_key")
    @classmethod
    def _empty_is_off(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @classmethod
    def on_free_ports(cls, redis: bool = False, ui: bool = False) -> StackSettings:
        """Services on distinct free ports, Redis and the UI too where asked (else none of their
        own): for tests and benchmarks."""
        gateway, candidate, ranker, redis_port, ui_port = free_ports(5)
        return cls(
            redis_port=redis_port if redis else 0,
            gateway_port=gateway,
            candidate_port=candidate,
            ranker_port=ranker,
            ui_port=ui_port if ui else 0,
        )


@dataclass
class Stack:
    settings: StackSettings
    workdir: Path
    with_ui: bool = True
    with_beat: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # How each process was started, so that a supervisor can start it again the same way.
    launchers: dict[str, Callable[[], subprocess.Popen[bytes]]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.ui_port}"

    def env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.setdefault("RECSYS_REDIS_URL", redis_url(s.redis_port, password=s.redis_password))
        env.update(
            {
                "GATEWAY_CANDIDATE_URL": f"http://{s.host}:{s.candidate_port}",
                "GATEWAY_RANKER_URL": f"http://{s.host}:{s.ranker_port}",
                "UI_GATEWAY_URL": self.gateway_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        def launch() -> subprocess.Popen[bytes]:
            with (self.workdir / "logs" / f"{name}.log").open("ab") as log:  # the child keeps it
                return subprocess.Popen(
                    [sys.executable, "-m", *args],
                    env=self.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

        self.launchers[name] = launch
        self.procs[name] = launch()

    def restart(self, name: str) -> None:
        """Start process `name` again as it was first started (after it died)."""
        self.procs[name] = self.launchers[name]()

    def start_service(self, name: str) -> None:
        port = getattr(self.settings, f"{name}_port")
        self._spawn(
            name,
            [
                "uvicorn",
                f"services.{name}.app:create_app",
                "--factory",
                "--host",
                self.settings.host,
                "--port",
                str(port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                str(self.settings.graceful_shutdown_seconds),
            ],
        )

    def start_worker(self) -> None:
        self._spawn(
            "worker",
            [
                "celery",
                "-A",
                "services.trainer.celery_app:celery_app",
                "worker",
                "-Q",
                "trainer",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
            ],
        )

    def start(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        if "RECSYS_REDIS_URL" not in os.environ and "RECSYS_REDIS_URL" not in self.extra_env:
            self.launchers["redis"] = lambda: start_redis_server(
                self.settings.redis_port,
                self.workdir / "redis",
                self.workdir / "logs" / "redis.log",
                password=self.settings.redis_password,
            )
            self.procs["redis"] = self.launchers["redis"]()
        self.start_worker()
        if self.with_beat:
            schedule = str(self.workdir / "celerybeat-schedule")
            self._spawn(
                "beat",
                [
                    "celery",
                    "-A",
                    "services.trainer.celery_app:celery_app",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    schedule,
                ],
            )
        for name in ("candidate", "ranker", "gateway"):
            self.start_service(name)
        if self.with_ui:
            self._spawn(
                "ui",
                [
                    "streamlit",
                    "run",
                    str(Path(ui.__file__).parent / "app.py"),
                    "--server.port",
                    str(self.settings.ui_port),
                    "--server.address",
                    self.settings.host,
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                    # no "Deploy" button or developer menu in the product's UI on localhost
                    "--client.toolbarMode",
                    "minimal",
                ],
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> None:
        s = self.settings
        urls = [
            f"http://{s.host}:{getattr(s, f'{n}_port')}/healthz"
            for n in ("candidate", "ranker", "gateway")
        ]
        if self.with_ui:
            urls.append(f"{self.ui_url}/_stcore/health")
        deadline = time.monotonic() + timeout
        for url in urls:
            while True:
                self.check_alive()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{url} did not answer within {timeout:.0f}s; see {self.workdir}/logs"
                    )
                time.sleep(0.2)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.workdir}/logs/{name}.log"
                )

    def stop(self) -> None:
        """SIGTERM each process in reverse start order and wait for it: the UI and gateway finish
        their in-flight requests while the stages and Redis still answer; then the stages, the
        worker (a warm shutdown), Redis last. A process still running after the grace period
        is killed."""
        for name in reversed(list(self.procs)):
            self.stop_process(name)
        self.procs.clear()

    def stop_process(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.settings.graceful_shutdown_seconds + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
