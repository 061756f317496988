"""``load_book``: the policy file with the authorities' own ``sla:`` blocks, whatever the
file's format, parsed once per version of the file."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from workers.deadlines.policies import POLICY_FILE_ENV, PolicyError
from workers.sla.deadline_service import load_book

PACKAGED = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
# An authority's own block, as the routing rules carry it: 6 working days for pos messages.
AUTHORITY = SimpleNamespace(id="22-test-body", sla={"pos": {"working_days": 6}})


def _answer(book: object, authority: str) -> float:
    return book.resolve("pos", region="22", authority=authority).answer  # type: ignore[attr-defined]


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_authority_blocks_apply_whatever_the_policy_files_format(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    """A YAML policy file used to drop every authority's own block (the routing rules'
    ``sla:``): the book came from the file alone."""
    path = tmp_path / f"policies{suffix}"
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(tomllib.loads(PACKAGED)), "utf-8")
    else:
        path.write_text(PACKAGED, "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    book = load_book([AUTHORITY])
    assert _answer(book, "22-test-body") == 6
    assert _answer(book, "22-other") == 10


def test_an_edited_policy_file_is_read_again(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(PACKAGED, "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    assert _answer(load_book(), "x") == 10
    path.write_text(PACKAGED.replace("answer = 10", "answer = 12", 1), "utf-8")
    os.utime(path, ns=(1, 2))  # a new modification time, however fast the edit was
    assert _answer(load_book(), "x") == 12
    # A book never shares the parsed data with the next one.
    first = load_book([AUTHORITY])
    assert _answer(load_book(), "22-test-body") == 12 and first is not load_book()


def test_a_missing_policy_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_FILE_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(PolicyError, match=r"nope\.toml: cannot read policy file"):
        load_book()
