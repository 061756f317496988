"""The template banks carry exactly the outcome of session 8's blind double annotation."""

from __future__ import annotations

from workers.classification.studies import bank_audit as audit
from workers.classification.studies.bank_audit import Item, Label


def _item(before: tuple[str, int], a: tuple[str, int], b: tuple[str, int]) -> Item:
    return Item("P1", "bank_a:roads:0", "text", Label(*before), Label(*a), Label(*b))


def test_the_rule_changes_a_field_only_when_both_annotators_agree_against_the_bank() -> None:
    both_against = _item(("roads", 0), ("roads", 1), ("roads", 1))
    split = _item(("roads", 0), ("roads", 1), ("roads", 0))
    category_only = _item(("roads", 1), ("transport", 1), ("transport", 0))
    assert both_against.after() == Label("roads", 1)
    assert split.after() == Label("roads", 0)
    assert category_only.after() == Label("transport", 1)
    assert audit.changes([both_against, split, category_only]) == [both_against, category_only]


def test_kappa() -> None:
    assert audit.kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    # Agreement no better than chance: observed 0.5, chance 0.5.
    assert audit.kappa([1, 1, 0, 0], [1, 0, 1, 0]) == 0.0


def test_the_banks_carry_the_audit() -> None:
    items = audit.load()
    assert len(items) == sum(len(p) for bank in audit.BANKS for p in bank.PROBLEMS.values())
    assert audit.mismatches(items) == []


def test_a_bank_label_off_the_audit_is_reported() -> None:
    items = audit.load()
    banks = audit.current_labels()
    changed = audit.changes(items)[0]
    kept = next(i for i in items if i.after() == i.before)
    for item in (changed, kept):
        bank, label = banks[item.text]
        tampered = dict(banks)
        tampered[item.text] = (bank, Label(label.category, 1 - label.urgent))
        problems = audit.mismatches(items, tampered)
        assert len(problems) == 1 and problems[0].startswith(item.pid), problems
    missing = dict(banks)
    del missing[kept.text]
    assert any("no longer in any bank" in p for p in audit.mismatches(items, missing))
