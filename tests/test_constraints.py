"""constraints.txt pins what pyproject.toml asks for, and every install goes through it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (REPO / "constraints.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not name==version"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    with (REPO / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    return [Requirement(r) for r in declared]


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]} outside pyproject's {requirement}"
        )


def test_the_installed_versions_are_the_pinned_ones() -> None:
    # The suite itself runs on the locked versions (make test installs through the file); a
    # package of the lock that is not installed (an extra, e.g. s3) is left out.
    installed: dict[str, Version] = {
        canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()
    }
    differ = {
        name: (str(pin), str(installed[name]))
        for name, pin in _pins().items()
        if name in installed and installed[name] != pin
    }
    assert not differ, f"installed differs from constraints.txt (pinned, installed): {differ}"


def test_the_makefile_and_the_dockerfile_install_through_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    installs = re.findall(r"pip install [^\n]*", makefile)
    dependency_installs = [i for i in installs if "-e ." in i or "-e '.[test]'" in i]
    assert len(dependency_installs) == 2, installs  # make run's and make test's
    assert all("-c constraints.txt" in i for i in dependency_installs), dependency_installs

    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"COPY [^\n]*constraints\.txt", dockerfile)
    docker_installs = re.findall(r"pip install [^\n]*", dockerfile)
    with_deps = [i for i in docker_installs if "--no-deps" not in i]
    assert with_deps and all("-c constraints.txt" in i for i in with_deps), docker_installs
