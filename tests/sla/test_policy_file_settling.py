"""A policy file caught mid-save never reaches the agents.

The shared policy book re-read ``$APPEALS_POLICY_FILE`` whenever its mtime changed, at every
intake and SLA batch and every routed appeal. A file saved in place is, between the truncate
and the last write, valid TOML with overrides missing: it was used at once (appeals routed
then lost their subcategory for good), and on a coarse clock, where the truncate and the
writes share one mtime, the cut book stayed in use (and ``appeals sla recompute`` applied it)
or a valid edit was never taken. The rules watcher now watches the policy file with the rule
files and takes it once settled, as new rules; the recompute refuses a file that may be
mid-save. (The reviewer's repros: halfwritten_policy.py and same_mtime_policy.py.)
"""

from __future__ import annotations

import asyncio
import os
from importlib import resources
from pathlib import Path

import pytest

from workers.deadlines.policies import POLICY_FILE_ENV, PolicyBook
from workers.route import agent as route_agent
from workers.routing import Router, RulesWatcher, load_rules
from workers.sla.deadline_service import policy_book, refresh_book

RULES = (Path(__file__).resolve().parents[2] / "workers/routing/data/22-altai-krai.yaml"
         ).read_text(encoding="utf-8")
PACKAGED = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
POS_22 = '\n[[overrides]]\nregime = "pos"\nregion = "22"\nanswer = {}\n'
SNOW = '\n[[overrides]]\nregime = "pos"\nsubcategory = "snow_on_roads"\nanswer = 3\n'


def _answer(book: PolicyBook) -> int:
    return int(book.resolve("pos", region="22").answer)


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           text: str) -> tuple[Path, Router, RulesWatcher]:
    policies = tmp_path / "policies.toml"
    policies.write_text(text, "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policies))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "22.yaml").write_text(RULES, encoding="utf-8")
    router = Router(load_rules(rules_dir))
    policy_book(router.rules, reload=False)  # a worker's start
    watcher = RulesWatcher(rules_dir, router.swap, initial=router.rules)
    assert not asyncio.run(watcher.check())  # the first poll: nothing changed
    return policies, router, watcher


def test_a_policy_file_cut_mid_save_is_not_used(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    full = PACKAGED + POS_22.format(5) + SNOW
    policies, router, watcher = _setup(tmp_path, monkeypatch, full)
    rules = router.rules
    assert route_agent.routed_subcategory("snow_on_roads", rules) == "snow_on_roads"
    cut = full.index(POS_22.format(5))
    with open(policies, "w", encoding="utf-8") as f:  # saved in place, cut at a line
        f.write(full[:cut])
        f.flush()
        # An appeal routed meanwhile keeps its subcategory, its deadlines the override.
        assert route_agent.routed_subcategory("snow_on_roads", router.rules) == "snow_on_roads"
        assert _answer(policy_book(router.rules)) == 5
        assert not asyncio.run(watcher.check())  # the watcher waits for it to settle
        f.write(full[cut:])
    assert not asyncio.run(watcher.check())
    assert not asyncio.run(watcher.check())  # settled, and the same as before: no reload
    assert router.rules is rules and _answer(policy_book(router.rules)) == 5


@pytest.mark.parametrize("cut_at", ["valid", "invalid"])
def test_a_save_that_keeps_the_mtime_is_taken_once_settled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_at: str) -> None:
    """Kernels before 6.13 stamp mtimes per jiffy: the truncate and the writes of a save share
    one mtime_ns (emulated with os.utime)."""
    old, new = PACKAGED + POS_22.format(5), PACKAGED + POS_22.format(3)
    policies, router, watcher = _setup(tmp_path, monkeypatch, old)
    cut = {"valid": new.index(POS_22.format(3)) + 1, "invalid": 200}[cut_at]
    with open(policies, "w", encoding="utf-8") as f:
        f.write(new[:cut])
        f.flush()
        stamp = policies.stat().st_mtime_ns
        assert _answer(policy_book(router.rules)) == 5  # not the cut file
        assert not asyncio.run(watcher.check())
        f.write(new[cut:])
    os.utime(policies, ns=(stamp, stamp))
    assert _answer(policy_book(router.rules)) == 5  # not taken before the watcher does
    with pytest.raises(ValueError, match="may still be being saved"):
        refresh_book(router.rules)  # `appeals sla recompute` right after the save
    assert _answer(policy_book(router.rules)) == 5
    assert not asyncio.run(watcher.check())  # the size changed since the last poll
    assert asyncio.run(watcher.check())  # the same on two polls: taken
    assert _answer(policy_book(router.rules)) == 3
    assert _answer(refresh_book(router.rules, settle=0.0)) == 3


def test_a_recompute_refuses_a_policy_file_written_while_it_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies, router, _watcher = _setup(tmp_path, monkeypatch, PACKAGED + POS_22.format(5))
    read_bytes = Path.read_bytes

    def racing(self: Path) -> bytes:
        data = read_bytes(self)
        if self == policies:  # the writer appends while the recompute reads
            with open(policies, "a", encoding="utf-8") as f:
                f.write(SNOW)
        return data

    monkeypatch.setattr(Path, "read_bytes", racing)
    with pytest.raises(ValueError, match="changed while it was read"):
        refresh_book(router.rules, settle=0.0)
    assert _answer(policy_book(router.rules)) == 5


def test_the_rules_snapshot_is_used_whatever_the_spelling_of_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``APPEALS_POLICY_FILE=/dir//policies.toml`` (or ``./policies.toml``): the loader keeps the
    bytes under its own spelling of the path, and the book was read from disk again instead of
    from the bytes the rules were checked with."""
    policies = tmp_path / "policies.toml"
    policies.write_text(PACKAGED + POS_22.format(5), "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, f"{tmp_path}//policies.toml")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "22.yaml").write_text(RULES, encoding="utf-8")
    rules = load_rules(rules_dir)
    # The file changes on disk after the rules were loaded: the rules' book is the loaded one.
    policies.write_text(PACKAGED + POS_22.format(9), "utf-8")
    assert _answer(policy_book(rules, reload=False)) == 5
