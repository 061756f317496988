"""A model trained on more than the shipped corpus stays out of the package, and workers load
the one APPEALS_CLASSIFIER_MODEL names (review of the CLI, D1).

`classify train --extra var/feedback/feedback.jsonl`, as the README showed it, overwrote the
shipped model with one whose vocabulary held the feedback's names and phone numbers, and the
workers could load only that packaged file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import ConfigError, Settings
from workers.classification import cli
from workers.classification.classifier import DEFAULT_MODEL_PATH, read_artifact


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[Path | None]:
    """Every ``train`` call's ``out``; nothing is trained or written."""
    from workers.classification import train as training

    seen: list[Path | None] = []

    def fake_train(data_dir: Path | None = None, out: Path | None = None,
                   **_kw: Any) -> dict[str, Any]:
        seen.append(out)
        return {}

    monkeypatch.setattr(training, "train", fake_train)
    return seen


def _feedback(tmp_path: Path) -> Path:
    path = tmp_path / "var" / "feedback" / "feedback.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps({"appeal_id": "a1", "text": "нет отопления",
                                   "category": "housing_utilities", "urgent": True}) + b"\n")
    return path


@pytest.mark.parametrize("where", ["default", "in-package"])
def test_training_on_extra_data_into_the_package_is_refused(
        where: str, tmp_path: Path, trainings: list[Path | None],
        capsys: pytest.CaptureFixture[str]) -> None:
    out = [] if where == "default" else ["--out", str(DEFAULT_MODEL_PATH.with_name("x.pkl"))]
    code = cli.main(["classify", "train", "--extra", str(_feedback(tmp_path)), *out])
    assert code == 2 and trainings == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "inside the package directory" in err and "--allow-in-package" in err
    assert "APPEALS_CLASSIFIER_MODEL" in err


def test_another_corpus_directory_counts_as_more_data(
        tmp_path: Path, trainings: list[Path | None],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "train", "--data", str(tmp_path)]) == 2
    assert trainings == [] and "--data" in capsys.readouterr().err


def test_extra_data_trains_outside_the_package_or_when_allowed(
        tmp_path: Path, trainings: list[Path | None]) -> None:
    extra = str(_feedback(tmp_path))
    out = tmp_path / "var" / "models" / "classifier.pkl"
    assert cli.main(["classify", "train", "--extra", extra, "--out", str(out)]) == 0
    assert cli.main(["classify", "train", "--extra", extra, "--allow-in-package"]) == 0
    # The shipped corpus alone may still rebuild the shipped model (the reproducibility check).
    assert cli.main(["classify", "train"]) == 0
    assert trainings == [out, None, None]


def _renamed_model(tmp_path: Path, version: str) -> Path:
    artifact = read_artifact(DEFAULT_MODEL_PATH)
    artifact["version"] = version
    path = tmp_path / "models" / "classifier.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(artifact))
    return path


def test_the_setting_is_checked_at_load() -> None:
    with pytest.raises(ConfigError, match=r"APPEALS_CLASSIFIER_MODEL.*no such file"):
        Settings.load({"APPEALS_CLASSIFIER_MODEL": "/nonexistent/classifier.pkl"})
    assert Settings.load({"APPEALS_CLASSIFIER_MODEL": ""}).classifier_model == ""


def test_a_file_that_is_no_model_stops_the_worker_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workers.cli import check_classifier

    bad = tmp_path / "garbage.pkl"
    bad.write_bytes(b"not a model")
    with pytest.raises(SystemExit) as stop:
        check_classifier(Settings(classifier_model=str(bad)))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(
        f"appeals worker: APPEALS_CLASSIFIER_MODEL={bad}: cannot load the model"), err


def test_classify_text_uses_the_configured_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = _renamed_model(tmp_path, "2.0+configured")
    monkeypatch.setenv("APPEALS_CLASSIFIER_MODEL", str(model))
    assert cli.main(["classify", "text", "нет отопления"]) == 0
    assert orjson.loads(capsys.readouterr().out)["model_version"] == "2.0+configured"


def test_the_worker_loads_the_configured_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.classification import classifier
    from workers.pipeline import build_worker

    loaded: list[Any] = []

    class Stop(Exception):
        pass

    def fake_load(path: Any = None) -> Any:
        loaded.append(path)
        raise Stop

    monkeypatch.setattr(classifier, "load_classifier", fake_load)
    model = _renamed_model(tmp_path, "2.0+configured")
    with pytest.raises(Stop):
        build_worker(Settings(app_id="classifier-model-setting", data_dir=str(tmp_path),
                              classifier_model=str(model)))
    assert loaded == [str(model)]
