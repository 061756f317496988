"""Write docker/constraints.txt: the versions of the runtime dependencies the tests ran with.

Why: ``pip wheel .`` alone resolves the newest releases pyproject's ranges allow, so an image
built next month runs a faust-streaming nobody tested, and the Faust patches the loss fixes
rest on (streams/faust_patches.py lists them) do not install on it. The
image is built with ``pip wheel -c docker/constraints.txt .`` instead.

Run it from the repository root in the environment the tests pass in (the project installed,
as by ``pip install -e '.[test]'``):

    python docker/constraints.py > docker/constraints.txt

Only the project's runtime closure is written (its ``dependencies`` and theirs, markers
evaluated for the image's Python, ``IMAGE_PYTHON``, on this platform, x86_64): no test
tools, no extras, not the project itself. tests/docker/test_constraints.py checks that every
dependency pyproject names is pinned within its range.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "citizen-appeals"
#: The Python of the image (docker/Dockerfile's ``FROM python:X.Y-slim``; a test keeps them
#: equal). Markers are evaluated for it, not for the interpreter running this: on 3.12+
#: pymorphy3 pulls in setuptools (``python_version >= "3.12"``), which the image never
#: installs, and the closure of a 3.13 test run asked for a pin the image cannot use.
IMAGE_PYTHON = "3.11"


def runtime_closure(project: str = PROJECT) -> dict[str, str]:
    """Installed version of every distribution the project needs at run time, by name."""
    pins: dict[str, str] = {}
    todo: list[Requirement] = [r for r in _requirements(project) if _applies(r, ())]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            # Needed on the image's Python, not installed on this one (a marker such as
            # python_version < "3.12" read on 3.13): its version cannot be read here.
            if _IMAGE_ENV["python_version"] != _here():
                continue
            raise
        pins[name] = dist.version
        extras = tuple(sorted(req.extras))
        todo.extend(r for r in _requirements(req.name) if _applies(r, extras))
    return dict(sorted(pins.items()))


def _requirements(dist_name: str) -> list[Requirement]:
    return [Requirement(text) for text in metadata.requires(dist_name) or ()]


_IMAGE_ENV = {"python_version": IMAGE_PYTHON, "python_full_version": f"{IMAGE_PYTHON}.0"}


def _here() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _applies(req: Requirement, extras: tuple[str, ...]) -> bool:
    """Whether ``req`` is needed in the image: its marker holds, on the image's Python
    (:data:`IMAGE_PYTHON`) and this platform, without an extra or with one asked for."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**_IMAGE_ENV, "extra": extra}) for extra in ("", *extras))


def main() -> int:
    print("# Versions of citizen-appeals' runtime dependencies the tests run with, used by")
    print("# docker/Dockerfile (pip wheel -c docker/constraints.txt). Regenerate after an")
    print("# upgrade, once the tests pass with it:")
    print("#   python docker/constraints.py > docker/constraints.txt")
    for name, version in runtime_closure().items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
