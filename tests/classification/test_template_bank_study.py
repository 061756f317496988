"""Session 9's tools for new template banks: blind items / agreement, the similarity check and the
paired bootstrap of the template-bank study."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.classification.studies import blind_labels, similarity, template_bank
from workers.classification.studies.bank_audit import fill

BANK = '''
P = tuple[str, bool]
PROBLEMS = {
    "housing_utilities": [("в подъезде пахнет газом", True), ("батареи чуть теплые", False)],
    "roads": [("яма на {street} глубиной с колено", False)],
}
'''


def _bank(tmp_path: Path) -> Path:
    path = tmp_path / "bank_x.py"
    path.write_text(BANK, encoding="utf-8")
    return path


def test_items_hide_labels_and_fill_slots(tmp_path: Path) -> None:
    bank = blind_labels.load_bank(_bank(tmp_path))
    items = tmp_path / "items.tsv"
    assert blind_labels.write_items(bank, items, seed=1) == 3
    lines = items.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(line.count("\t") == 1 for line in lines), "id and text only: no label"
    assert "{street}" not in items.read_text(encoding="utf-8")
    key = dict(x.split("\t") for x in items.with_suffix(".key.tsv").read_text().splitlines())
    assert sorted(key.values()) == ["housing_utilities:0", "housing_utilities:1", "roads:0"]


def test_agree_lists_each_disagreement(tmp_path: Path) -> None:
    bank = blind_labels.load_bank(_bank(tmp_path))
    items = tmp_path / "items.tsv"
    blind_labels.write_items(bank, items, seed=1)
    key = dict(x.split("\t") for x in items.with_suffix(".key.tsv").read_text().splitlines())
    theirs = {"housing_utilities:0": "housing_utilities\t1", "housing_utilities:1":
              "housing_utilities\t1", "roads:0": "landscaping\t0"}
    labels = tmp_path / "labels.tsv"
    labels.write_text("".join(f"{q}\t{theirs[ref]}\treason\n" for q, ref in key.items()),
                      encoding="utf-8")
    diff, _k_cat, _k_urg = blind_labels.disagreements(bank, items.with_suffix(".key.tsv"),
                                                      labels)
    assert diff == [("housing_utilities:1", "housing_utilities", False, "housing_utilities", True),
                    ("roads:0", "roads", False, "landscaping", False)]


def test_similarity_flags_a_copy_and_not_a_stranger() -> None:
    held = ["Во дворе дома третий день не вывозят мусор, баки переполнены."]
    new = [("copy", "третий день не вывозят мусор баки переполнены"),
           ("stranger", "на остановке разбито стекло павильона")]
    by = {pid: (jac, shared) for pid, jac, shared in similarity.closeness(new, held)}
    assert by["copy"][1] and by["copy"][0] >= similarity.JACCARD_FLAG
    assert not by["stranger"][1] and by["stranger"][0] < 0.1


def test_paired_gain_is_zero_for_the_same_model_and_positive_for_a_better_one() -> None:
    y = np.array([True, False, True, False, True, False])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    weak = template_bank.Scores(np.array([0.4, 0.6, 0.7, 0.3, 0.2, 0.5]), y, y)
    strong = template_bank.Scores(np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3]), y, y)
    same = template_bank.paired_ap_gain(weak, weak, y, groups, rounds=50)
    assert np.allclose(same, 0.0)
    better = template_bank.paired_ap_gain(weak, strong, y, groups, rounds=200)
    assert (better >= 0).all() and (better > 0).mean() > 0.9


#: Phrasings the session-9 rule dropped (writer and blind annotator disagreed), per bank.
DROPPED_BY_RULE = {"bank_c": 0, "bank_d": 0, "bank_e": 1, "bank_f": 0, "bank_g": 0}


def test_session9_banks_carry_only_phrasings_both_annotators_labelled_alike() -> None:
    """The rule drops a phrasing where writer and blind annotator disagree: the committed banks
    must match the committed annotator labels exactly, and keep every item they were given."""
    corpusgen = Path(blind_labels.__file__).resolve().parents[1] / "corpusgen"
    audit = Path(blind_labels.__file__).resolve().parents[1] / "corpus" / "bank_s9"
    for name in ("bank_c", "bank_d", "bank_e", "bank_f", "bank_g"):
        bank = blind_labels.load_bank(corpusgen / f"{name}.py")
        diff, _k_cat, _k_urg = blind_labels.disagreements(
            bank, audit / f"{name}_items.key.tsv", audit / f"{name}_labels_annotator.tsv")
        assert diff == [], name
        items = dict(line.split("\t") for line in
                     (audit / f"{name}_items.tsv").read_text(encoding="utf-8").splitlines())
        key = dict(line.split("\t") for line in
                   (audit / f"{name}_items.key.tsv").read_text(encoding="utf-8").splitlines())
        texts = {ref: fill(text) for ref, text, _urgent in blind_labels.phrasings(bank)}
        shown = {key[q]: text for q, text in items.items()}
        assert {r: t for r, t in shown.items() if not r.startswith(blind_labels.DROPPED)} == texts
        assert len(shown) - len(texts) == DROPPED_BY_RULE[name], name


def test_drop_marks_the_phrasing_and_shifts_its_category(tmp_path: Path) -> None:
    key = tmp_path / "key.tsv"
    key.write_text("Q1\troads:0\nQ2\troads:1\nQ3\troads:2\nQ4\tother:1\n", encoding="utf-8")
    blind_labels.drop(key, "roads:1")
    assert key.read_text(encoding="utf-8").splitlines() == [
        "Q1\troads:0", "Q2\tdropped:roads:1", "Q3\troads:1", "Q4\tother:1"]
