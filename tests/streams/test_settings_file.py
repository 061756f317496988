"""Settings from the APPEALS_CONFIG TOML file: checked and converted by the field's type like
environment values, errors naming the file and the key; the data dir is made at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import ConfigError, Settings


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "appeals.toml"
    path.write_text(text, encoding="utf-8")
    return Settings.load({"APPEALS_CONFIG": str(path), **env})


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    message = str(exc.value)
    assert str(tmp_path / "appeals.toml") in message, message
    return message


def test_native_toml_values(tmp_path: Path) -> None:
    s = load(tmp_path, 'natural_batches = false\npartitions = 4\nbatch_linger = 1\n'
                       'kafka = "kafka://k:9092"\nwarning_share = 0.5\n')
    assert s.natural_batches is False
    assert s.partitions == 4
    assert s.batch_linger == 1.0 and isinstance(s.batch_linger, float)
    assert s.kafka == "kafka://k:9092"
    assert s.warning_share == 0.5


def test_strings_are_read_like_environment_values(tmp_path: Path) -> None:
    s = load(tmp_path, 'natural_batches = "false"\npartitions = "8"\nwarning_share = ""\n')
    assert s.natural_batches is False
    assert s.partitions == 8
    assert s.warning_share is None


@pytest.mark.parametrize(("text", "key"), [
    ("kafka = 9092\n", "kafka"),
    ('partitions = "eight"\n', "partitions"),
    ("partitions = 1.5\n", "partitions"),
    ("natural_batches = 1\n", "natural_batches"),
    ('natural_batches = "maybe"\n', "natural_batches"),
    ("batch_linger = true\n", "batch_linger"),
    ("[kafka]\nhost = 1\n", "kafka"),
])
def test_wrong_types_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    assert f": {key}" in error(tmp_path, text)


def test_range_errors_say_the_file_set_the_value(tmp_path: Path) -> None:
    message = error(tmp_path, "partitions = 0\n")
    assert message.startswith("APPEALS_PARTITIONS must be at least 1")
    assert message.endswith(": partitions)")


def test_environment_still_wins_and_is_blamed(tmp_path: Path) -> None:
    assert load(tmp_path, "partitions = 0\n", APPEALS_PARTITIONS="3").partitions == 3
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, "partitions = 3\n", APPEALS_PARTITIONS="0")
    assert "APPEALS_CONFIG" not in str(exc.value)


def test_unknown_scalar_key_is_a_typo(tmp_path: Path) -> None:
    assert "did you mean partitions?" in error(tmp_path, "partitons = 8\n")
    assert "did you mean kafka?" in error(tmp_path, 'APPEALS_KAFKA = "kafka://x:1"\n')


def test_sections_are_kept_for_sub_systems(tmp_path: Path) -> None:
    s = load(tmp_path, "[gateway]\nrate = 3\n")
    assert s.extra == {"gateway": {"rate": 3}}


def test_relative_data_dir_is_created_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.app import create_app

    monkeypatch.chdir(tmp_path)  # no ./var here
    app = create_app(Settings(app_id="data-dir-test"))
    assert (tmp_path / "var" / "worker").is_dir()
    assert Path(app.conf.datadir).is_absolute()


def test_a_typo_in_the_file_is_refused_when_only_some_settings_are_read(
        tmp_path: Path) -> None:
    """``Settings.load(only=...)`` (``appeals classify eval`` reads only its model) skipped a
    misspelt key as another command's: clasifier_model left the packaged model in use with
    nothing said, where the full load names the setting meant."""
    path = tmp_path / "appeals.toml"
    path.write_text('clasifier_model = "/models/v7"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean classifier_model") as exc:
        Settings.load({"APPEALS_CONFIG": str(path)}, only={"classifier_model"})
    assert str(path) in str(exc.value)
    # Another command's setting and a section are still no concern of this one.
    path.write_text('intake_max_age = 86400\npartitions = "many"\n[gateway]\nrate = 3\n',
                    encoding="utf-8")
    s = Settings.load({"APPEALS_CONFIG": str(path)}, only={"intake_max_age"})
    assert s.intake_max_age == 86400 and s.extra == {"gateway": {"rate": 3}}
