"""Public API behaviour: types, garbage input, batch/single agreement, load time, throughput."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.classification import Classification, Classifier, load_classifier
from workers.classification.classifier import GARBAGE_CONFIDENCE
from workers.classification.lexicons import CATEGORIES

ROOT = Path(__file__).resolve().parents[2]


def test_classification_is_frozen_slots(clf: Classifier) -> None:
    res = clf.classify("На улице Ленина огромные ямы на дороге")
    assert isinstance(res, Classification)
    assert res.category == "roads"
    assert 0.0 <= res.confidence <= 1.0
    assert len(res.top3) == 3 and res.top3[0] == (res.category, res.confidence)
    assert all(c in CATEGORIES for c, _ in res.top3)
    assert res.model_version == clf.version
    assert not hasattr(res, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.category = "other"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "   ", "😡😡😡", "!!!???", "asdfgh qwerty", "12345"])
def test_empty_and_garbage_is_other_with_low_confidence(clf: Classifier, text: str) -> None:
    res = clf.classify(text)
    assert res.category == "other"
    assert res.confidence < 0.3
    assert res.urgent is False
    assert res.needs_triage()


@pytest.mark.parametrize("text", ["-1", "-1 -2 -3", "8 (3852) 55 - 12 - 34", "−30", "мороз"])
def test_frost_alone_is_garbage(clf: Classifier, text: str) -> None:
    # A negative number with no word is no frost appeal: it went to housing_utilities as urgent
    # at confidence 0.65-0.70, so it was routed instead of triaged.
    res = clf.classify(text)
    assert (res.category, res.urgent, res.confidence) == ("other", False, GARBAGE_CONFIDENCE)


@pytest.mark.parametrize("text", [
    "Плохо греют батареи, в квартире 17 - 18 градусов.",
    "В домах 10 - 12 по улице Ленина плохо убирают подъезды.",
    "Поликлиника принимает с 8:00 - 14:00, очереди огромные.",
    "Автобусы 25 - 27 ходят раз в час.",
])
def test_ranges_are_not_frost_emergencies(clf: Classifier, text: str) -> None:
    assert clf.classify(text).urgent is False


@pytest.mark.parametrize(("text", "in_words"), [
    ("15.01 -35 градусов, батареи холодные", "15 января -35 градусов, батареи холодные"),
    ("Сегодня 12.01.2026 -38°, нет отопления в доме",
     "Сегодня, 12 января, -38°, нет отопления в доме"),
    ("в 7:00 -32 градуса, батарея холодная", "утром -32 градуса, батарея холодная"),
])
def test_frost_after_a_date_or_time_is_urgent(clf: Classifier, text: str,
                                              in_words: str) -> None:
    # The range rule read the minus after a date or a time as a range's dash: these were not
    # urgent, while the same appeal with the date in words was.
    assert clf.classify(in_words).urgent is True
    assert clf.classify(text).urgent is True


@pytest.mark.parametrize("text", [
    "Во дворе дома 12 не вывозят мусор уже неделю.",
    "Не работает лифт в подъезде, пожилым тяжело.",
    "Холодные батареи в квартире.",
    "В доме отключили горячую воду на плановый ремонт.",
    "На остановке нет навеса.",
])
def test_phone_number_with_spaced_dashes_does_not_make_urgent(clf: Classifier,
                                                              text: str) -> None:
    res = clf.classify(text + " Мой телефон 8 913 555 - 12 - 34.")
    assert res.urgent is False
    assert res.urgent is clf.classify(text).urgent


def test_non_string_input_does_not_raise(clf: Classifier) -> None:
    res = clf.classify(None)  # type: ignore[arg-type]
    assert res.category == "other"


@pytest.mark.parametrize(("text", "category", "urgent"), [
    ("В подъезде пахнет газом!!!", "housing_utilities", True),
    ("ОТОПЛЕНИЯ НЕТ на улице -30 дети мерзнут 😡", "housing_utilities", True),
    ("Во дворе не убирают снег, сугробы до колена", "landscaping", False),
    ("Снег на проезжей части не убирают, машины буксуют", "roads", False),
    ("Автобус 25 ходит раз в час, расписание не соблюдается", "transport", False),
    ("Не могу записаться к терапевту в поликлинике", "healthcare", False),
    ("Бродячие собаки покусали ребенка у школы", "safety", True),
])
def test_obvious_cases(clf: Classifier, text: str, category: str, urgent: bool) -> None:
    res = clf.classify(text)
    assert res.category == category
    assert res.urgent is urgent


def test_a_power_cut_is_urgent_a_planned_one_is_not(clf: Classifier) -> None:
    """DESIGN §3: an outage is an emergency. «Во всём квартале отключили электричество» and the
    like fired no urgency rule, and the model called them not urgent (p 0.01-0.05). The rules
    count through the "a rule fired" column; the shipped model was retrained with them
    (2.0+917053f3d03a) so that `classify train` rebuilds it."""
    from tests.classification.test_lexicons import PLANNED_CUTS, POWER_CUTS

    for text in POWER_CUTS[:3]:
        assert clf.classify(text).urgent is True, text
    for text in PLANNED_CUTS:
        assert clf.classify(text).urgent is False, text


def test_batch_equals_single(clf: Classifier) -> None:
    texts = ["Нет воды третий день", "", "В школе холодно", "спасибо за праздник",
             "ямы на дороге по ул. Попова", "😡", "Пахнет газом"]
    batch = clf.classify_batch(texts)
    singles = [clf.classify(t) for t in texts]
    for b, s in zip(batch, singles, strict=True):
        assert b.category == s.category and b.urgent == s.urgent
        assert b.confidence == pytest.approx(s.confidence, abs=1e-5)
    assert clf.classify_batch([]) == []


def test_load_classifier_is_cached() -> None:
    assert load_classifier() is load_classifier()


def test_model_load_time_in_fresh_process() -> None:
    # CPU time, not wall time: a CI box running other jobs on the same cores (chaos tests,
    # benchmarks) stretched the wall time of this 1 s load to 3 s. The target (< 1 s) is
    # reported by `appeals classify bench`; here a floor with slack.
    code = ("import time; t=time.process_time(); "
            "from workers.classification import load_classifier; load_classifier(); "
            "print(time.process_time()-t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert float(out.stdout.strip()) < 2.0


def test_throughput_sanity(clf: Classifier) -> None:
    from workers.classification.bench import run_bench

    res = run_bench(n=3000, batch_size=256)
    # The target (≥ 5,000/s on one free core) is reported by `classify bench`; here only a
    # generous floor, on CPU time, so other jobs on a shared test machine can't fail it.
    assert res["appeals_per_cpu_s"] > 1000


def test_explain_lists_rule_hits(clf: Classifier) -> None:
    exp = clf.explain("Пахнет газом в подъезде")
    assert exp["urgent_hits"]
    assert "housing_utilities" in exp["category_hits"]


def test_model_file_small_and_versioned(clf: Classifier) -> None:
    from workers.classification.classifier import DEFAULT_MODEL_PATH

    assert DEFAULT_MODEL_PATH.stat().st_size < 5_000_000
    assert len(clf.data_hash) == 64
    assert clf.version.endswith(clf.data_hash[:12])


def test_elapsed_single_classify_is_fast(clf: Classifier) -> None:
    clf.classify("прогрев кеша")
    t = time.perf_counter()
    for _ in range(100):
        clf.classify("Не горят фонари во дворе дома 5")
    assert (time.perf_counter() - t) / 100 < 0.01


def test_the_default_triage_threshold_is_the_settings_default() -> None:
    from streams.settings import Settings
    from workers.classification.classifier import DEFAULT_TRIAGE_THRESHOLD

    assert Settings().triage_confidence == DEFAULT_TRIAGE_THRESHOLD


def test_lexicon_error_is_not_blamed_on_the_model(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # urgent.txt saved as cp1251 by a Windows editor was reported as "classifier.pkl: not a
    # model this version reads".
    from workers.classification import cli, lexicons
    from workers.classification.classifier import _load_cached

    d = tmp_path / "lexicons"
    shutil.copytree(lexicons.LEXICON_DIR, d)
    p = d / "urgent.txt"
    p.write_bytes(p.read_text(encoding="utf-8").encode("cp1251"))
    monkeypatch.setattr(lexicons, "LEXICON_DIR", d)
    _load_cached.cache_clear()
    try:
        assert cli.main(["classify", "text", "Нет воды"]) == 2
    finally:
        _load_cached.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith(f"error: {p}:1: not UTF-8") and "model" not in err
    assert len(err.strip().splitlines()) == 1


def _damaged(name: str) -> dict[str, object]:
    import numpy as np

    from workers.classification.classifier import DEFAULT_MODEL_PATH, read_artifact

    art = dict(read_artifact(DEFAULT_MODEL_PATH))
    if name == "cut_rows":
        art["w_cat"] = art["w_cat"][:-5]
    elif name == "short_classes":
        art["classes"] = list(art["classes"])[:-1]
    elif name == "renamed_class":
        art["classes"] = [c if c != "roads" else "road" for c in art["classes"]]
    elif name == "nan_weights":
        art["w_cat"] = art["w_cat"].copy()
        art["w_cat"][0, :] = np.nan
    elif name == "nan_urgency":
        art["w_urg"] = art["w_urg"].copy()
        art["w_urg"][3] = np.inf
    elif name == "nan_threshold":
        art["urgent_threshold"] = float("nan")
    elif name == "threshold_one":
        art["urgent_threshold"] = 1.0
    return art


@pytest.mark.parametrize("damage", ["cut_rows", "short_classes", "renamed_class",
                                    "nan_weights", "nan_urgency", "nan_threshold",
                                    "threshold_one"])
def test_a_damaged_model_is_refused_at_load(damage: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Only unpickling and keys were checked: these loaded and then crashed, routed on a NaN
    confidence or made nothing urgent (review of session 18)."""
    import pickle

    from workers.classification import cli
    from workers.classification.dataio import DataError

    path = tmp_path / f"{damage}.pkl"
    path.write_bytes(pickle.dumps(_damaged(damage)))
    with pytest.raises(DataError, match="not a model this version reads"):
        load_classifier(path)
    assert cli.main(["classify", "text", "--model", str(path), "Пахнет газом"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err


def test_a_nan_confidence_needs_triage() -> None:
    res = Classification("roads", False, float("nan"), (("roads", float("nan")),), "x")
    assert res.needs_triage()
    assert not Classification("roads", False, 0.9, (("roads", 0.9),), "x").needs_triage()


def test_a_shared_classifier_featurises_under_its_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_classifier() hands every caller one instance whose encoder caches are mutated while
    a batch is featurised: two threads at once got exceptions and wrong results (review of
    session 18)."""
    from workers.classification.classifier import DEFAULT_MODEL_PATH, read_artifact
    from workers.classification.lexicons import load_lexicons

    c = Classifier(read_artifact(DEFAULT_MODEL_PATH), load_lexicons())
    real = c.featurizer.transform_texts
    held: list[bool] = []

    def spy(texts: object) -> object:
        lock = getattr(c, "_lock", None)
        held.append(lock is not None and lock.locked())
        return real(texts)  # type: ignore[arg-type]

    monkeypatch.setattr(c.featurizer, "transform_texts", spy)
    c.classify_batch(["Пахнет газом", "Яма на дороге"])
    c.urgency_scores(["Пахнет газом"])
    assert held == [True, True]

