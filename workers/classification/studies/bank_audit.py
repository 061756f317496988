"""Study: the blind double annotation of both template banks (session 8), re-derived from its files.

Why it exists: the template banks label 2,640 training lines and 360 of the held-out split's
435 lines, and until session 8 every bank label had been set or checked by the one person who
also tuned the model. Two annotators labelled every phrasing from the guide alone, without the
bank, its labels or any model output (``corpus/audit_s8/``: the guide extract they read, the
shuffled items, their labels, the banks' labels before the audit and the rule written before they
started). This module recomputes the agreement and the changes the rule implies, and checks that
the banks carry exactly that outcome, so the audit can be re-read and cannot silently drift.

Run: ``.venv/bin/python -m workers.classification.studies.bank_audit`` (a second).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from workers.classification.corpusgen import bank_a, bank_b

AUDIT_DIR = Path(__file__).resolve().parents[1] / "corpus" / "audit_s8"
BANKS: tuple[ModuleType, ...] = (bank_a, bank_b)
#: The one neutral value each slot was filled with for the annotators.
SLOT_VALUES = {"{addr}": "ул. Садовая, 5", "{street}": "Садовая", "{city}": "Бийск",
               "{n}": "12", "{temp}": "минус 30", "{days}": "5"}


@dataclass(frozen=True)
class Label:
    category: str
    urgent: int


@dataclass(frozen=True)
class Item:
    """One phrasing as the annotators saw it, with the bank's label before the audit."""

    pid: str
    tpl_before: str
    text: str
    before: Label
    a: Label
    b: Label

    @property
    def bank(self) -> str:
        return self.tpl_before.split(":", 1)[0]

    def after(self) -> Label:
        """The rule: a field changes iff both annotators agree with each other against the bank."""
        cat = self.a.category if self.a.category == self.b.category else self.before.category
        urg = self.a.urgent if self.a.urgent == self.b.urgent else self.before.urgent
        return Label(cat, urg)


def fill(text: str) -> str:
    for slot, value in SLOT_VALUES.items():
        text = text.replace(slot, value)
    return text


def _rows(name: str) -> list[list[str]]:
    text = (AUDIT_DIR / name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _labels(who: str) -> dict[str, Label]:
    out: dict[str, Label] = {}
    for part in (1, 2):
        for f in _rows(f"labels_{who}_part{part}.tsv"):
            out[f[0]] = Label(f[1], int(f[2]))
    return out


def load() -> list[Item]:
    texts = {f[0]: f[1] for part in (1, 2) for f in _rows(f"items_part{part}.tsv")}
    a, b = _labels("A"), _labels("B")
    items = [Item(pid, tpl, texts[pid], Label(cat, int(urg)), a[pid], b[pid])
             for pid, tpl, cat, urg in _rows("bank_labels_before.tsv")]
    if not (len(items) == len(texts) == len(a) == len(b)):
        raise ValueError(f"audit files disagree on the item count: {len(items)} labels before, "
                         f"{len(texts)} items, {len(a)} / {len(b)} annotator labels")
    return items


def kappa(x: Sequence[object], y: Sequence[object]) -> float:
    """Cohen's kappa: agreement beyond what the two label distributions give by chance."""
    n = len(x)
    observed = sum(p == q for p, q in zip(x, y, strict=True)) / n
    cx, cy = Counter(x), Counter(y)
    chance = sum(cx[k] * cy[k] for k in set(cx) | set(cy)) / (n * n)
    return 1.0 if chance == 1 else (observed - chance) / (1 - chance)


def agreement(items: Sequence[Item]) -> list[tuple[str, str, int, dict[str, tuple[int, float]]]]:
    """(field, bank, n, {pair: (agreeing, kappa)}) for urgency and category, per bank and all."""
    out = []
    for field in ("urgent", "category"):
        for bank in ("bank_a", "bank_b", "all"):
            sel = [i for i in items if bank in ("all", i.bank)]
            cols = {who: [getattr(getattr(i, who), field) for i in sel]
                    for who in ("a", "b", "before")}
            pairs = {}
            for p, q in (("a", "b"), ("a", "before"), ("b", "before")):
                agree = sum(s == t for s, t in zip(cols[p], cols[q], strict=True))
                pairs[f"{p}-{q}"] = (agree, kappa(cols[p], cols[q]))
            out.append((field, bank, len(sel), pairs))
    return out


def changes(items: Iterable[Item]) -> list[Item]:
    return [i for i in items if i.after() != i.before]


def current_labels() -> dict[str, tuple[str, Label]]:
    """Filled phrasing text -> (bank, current label) across both banks."""
    out: dict[str, tuple[str, Label]] = {}
    for bank in BANKS:
        name = bank.__name__.rsplit(".", 1)[-1]
        for cat, problems in bank.PROBLEMS.items():
            for text, urgent in problems:
                out[fill(text)] = (name, Label(cat, int(urgent)))
    return out


def mismatches(items: Sequence[Item],
               banks: dict[str, tuple[str, Label]] | None = None) -> list[str]:
    """Every way the banks differ from the audit's outcome (empty when they carry it exactly)."""
    banks = current_labels() if banks is None else banks
    problems = []
    for i in items:
        if i.text not in banks:
            problems.append(f"{i.pid} ({i.tpl_before}): phrasing no longer in any bank")
            continue
        bank, label = banks[i.text]
        if bank != i.bank:
            problems.append(f"{i.pid}: moved from {i.bank} to {bank}")
        if label != i.after():
            problems.append(f"{i.pid} ({i.tpl_before}): bank has {label}, the audit gives "
                            f"{i.after()}")
    extra = set(banks) - {i.text for i in items}
    problems += [f"phrasing not in the audit: {t}" for t in sorted(extra)]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    items = load()
    print(f"{len(items)} phrasings; agreeing / kappa")
    for field, bank, n, pairs in agreement(items):
        cells = "  ".join(f"{k} {v[0]} ({v[1]:.3f})" for k, v in pairs.items())
        print(f"  {field:8} {bank:6} n={n:3}  {cells}")
    changed = changes(items)
    print(f"\n{len(changed)} phrasings changed by the rule:")
    for i in sorted(changed, key=lambda i: i.tpl_before):
        after = i.after()
        what = []
        if after.urgent != i.before.urgent:
            what.append(f"urgent {i.before.urgent}->{after.urgent}")
        if after.category != i.before.category:
            what.append(f"{i.before.category}->{after.category}")
        print(f"  {i.tpl_before:28} {', '.join(what):38} {i.text}")
    wrong = mismatches(items)
    print("\nthe banks carry the audit's outcome: " + ("yes" if not wrong else "NO"))
    for w in wrong:
        print(f"  {w}")
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
