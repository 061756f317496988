"""`classify eval/text/bench` read only the setting they use, APPEALS_CLASSIFIER_MODEL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers import cli as main_cli

ROW = '{"text": "Яма на дороге по улице Ленина", "category": "roads", "urgent": false}\n'


@pytest.fixture
def unrelated_bad_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Values a worker refuses, for settings eval never uses."""
    monkeypatch.setenv("APPEALS_KAFKA", "bogus")
    monkeypatch.setenv("APPEALS_PARTITIONS", "abc")
    cfg = tmp_path / "appeals.toml"
    # Another command's setting with a bad value (a key that is no setting at all is refused
    # even here: tests/streams/test_settings_file.py).
    cfg.write_text('redis = "not a url"\n', encoding="utf-8")
    monkeypatch.setenv("APPEALS_CONFIG", str(cfg))
    monkeypatch.delenv("APPEALS_CLASSIFIER_MODEL", raising=False)


@pytest.mark.usefixtures("unrelated_bad_settings")
@pytest.mark.parametrize("command", [
    ["eval", "--json"], ["text", "Яма на дороге"], ["bench", "--n", "4", "--batch-size", "2"]])
def test_an_unrelated_bad_setting_does_not_stop_the_command(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """APPEALS_KAFKA=bogus stopped `eval` with a configuration error about the broker."""
    data = tmp_path / "set.jsonl"
    data.write_text(ROW, encoding="utf-8")
    extra = ["--data", str(data)] if command[0] == "eval" else []
    assert main_cli.main(["classify", *command, *extra]) == 0, capsys.readouterr().err
    json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("unrelated_bad_settings")
def test_the_model_setting_is_still_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "set.jsonl"
    data.write_text(ROW, encoding="utf-8")
    missing = tmp_path / "no-such-model.pkl"
    monkeypatch.setenv("APPEALS_CLASSIFIER_MODEL", str(missing))
    assert main_cli.main(["classify", "eval", "--data", str(data), "--json"]) == 2
    err = capsys.readouterr().err
    assert "APPEALS_CLASSIFIER_MODEL" in err and "no such file" in err
    assert "APPEALS_KAFKA" not in err


@pytest.mark.usefixtures("unrelated_bad_settings")
def test_an_empty_model_setting_means_the_packaged_model(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APPEALS_CLASSIFIER_MODEL", "")
    assert main_cli.main(["classify", "text", "В подъезде пахнет газом"]) == 0
    assert json.loads(capsys.readouterr().out)["urgent"] is True


def test_the_model_setting_from_the_config_file_is_read(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "appeals.toml"
    cfg.write_text(f'classifier_model = "{tmp_path / "gone.pkl"}"\nkafka = "bogus"\n',
                   encoding="utf-8")
    monkeypatch.setenv("APPEALS_CONFIG", str(cfg))
    monkeypatch.delenv("APPEALS_CLASSIFIER_MODEL", raising=False)
    assert main_cli.main(["classify", "text", "Яма"]) == 2
    err = capsys.readouterr().err
    assert "APPEALS_CLASSIFIER_MODEL" in err and "classifier_model" in err
