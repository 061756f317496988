"""Build ``corpus/train.jsonl`` and ``corpus/test.jsonl`` from two independent template banks.

Why two banks: a held-out split generated from the same templates as training only measures
template recall. Bank A (+ hand-written training lines) → train; bank B (+ separate
hand-written lines, separate street names) → test. Variation is heavy on purpose — style
wrappers per channel, random typos, caps, emoji, slang, a second problem, filler sentences —
so the model has to learn words, not sentence frames.

Run: ``python -m workers.classification.corpusgen.generate`` (fixed seed, deterministic).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import orjson

from . import bank_a, bank_b, bank_c, bank_d, bank_e, bank_f, bank_g

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
SEED = 20240522

STREETS_A = ["Ленина", "Советская", "Молодежная", "Попова", "Гоголя", "Пролетарская",
             "Чкалова", "Калинина", "Строителей", "Мира", "Садовая", "Партизанская"]
STREETS_B = ["Антона Петрова", "Взлетная", "Шукшина", "Социалистическая", "Павловский тракт",
             "Горького", "Северо-Западная", "Лесная", "Октябрьская"]
CITIES_A = ["Барнаул", "Бийск", "Рубцовск", "Новоалтайск", "Заринск", "Алейск"]
CITIES_B = ["Камень-на-Оби", "Славгород", "Белокуриха", "Яровое", "Павловск"]
NAMES = ["Иванова Т.П.", "Петров А.С.", "Сидоренко Н.В.", "Кузнецова Е.А.", "Смирнов В.И.",
         "Орлова Г.М.", "Ткаченко И.И."]
FILLERS_A = ["Живу здесь 20 лет.", "Обращался в УК и в администрацию, без толку.",
             "Фото прилагаю.", "Надеюсь на понимание.", "Это уже не первое обращение."]
FILLERS_B = ["Звонили много раз.", "Сколько еще ждать?", "Видео есть.",
             "Рассчитываю на вашу помощь."]
KEY_NEIGHBOURS = {
    "а": "пв", "о": "лр", "е": "кн", "и": "мт", "т": "иь", "н": "ег", "р": "ап", "с": "чм",
    "л": "до", "в": "ыа", "к": "уе", "м": "си", "д": "лж", "п": "ар", "у": "кц",
}
VOWEL_SWAP = {"о": "а", "а": "о", "е": "и", "и": "е", "я": "е"}
STYLE_WEIGHTS = {"social": 0.35, "formal": 0.2, "hotline": 0.2, "web": 0.25}
#: Session 9's banks (``corpus/bank_s9/``): C is a development check set, the others training
#: phrasings. Each carries its own streets, towns and fillers, and gets its own seed.
BANK_C_FILE = "test_bankc.jsonl"
#: Bank G: round 2's final check set, never trained on and used for no decision.
BANK_G_FILE = "test_bankg.jsonl"
#: Check banks (never trained on): output file -> (bank module, seed offset, appeals per category).
CHECK_BANKS: dict[str, tuple[ModuleType, int, int]] = {
    BANK_C_FILE: (bank_c, 30, 30),
    BANK_G_FILE: (bank_g, 70, 30),
}
#: Training banks beyond A: output file -> (bank module, seed offset, appeals per category).
EXTRA_TRAINING_BANKS: dict[str, tuple[ModuleType, int, int]] = {
    "train_bankd.jsonl": (bank_d, 40, 110),
    "train_banke.jsonl": (bank_e, 50, 110),
    "train_bankf.jsonl": (bank_f, 60, 110),
}
#: The ones ``main`` writes for training (each decided by a rule in ``corpus/bank_s9/``).
TRAINED_BANKS = ("train_bankd.jsonl",)


def typo(word: str, rng: random.Random) -> str:
    """One realistic typo: swapped, dropped, doubled letter, neighbour key or unstressed vowel."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(5)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    ch = word[i].lower()
    if op == 3 and ch in KEY_NEIGHBOURS:
        return word[:i] + rng.choice(KEY_NEIGHBOURS[ch]) + word[i + 1 :]
    if ch in VOWEL_SWAP:
        return word[:i] + VOWEL_SWAP[ch] + word[i + 1 :]
    return word


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """Apply :func:`typo` to each word with probability ``rate``."""
    return " ".join(typo(w, rng) if rng.random() < rate else w for w in text.split(" "))


def _fill(text: str, rng: random.Random, streets: Sequence[str], cities: Sequence[str]) -> str:
    street = rng.choice(streets)
    city = rng.choice(cities)
    house = rng.randint(1, 120)
    addr = rng.choice([
        f"ул. {street}, {house}", f"{city}, ул. {street}, д. {house}",
        f"улица {street} дом {house}", f"{street} {house}",
    ])
    temp_n = rng.randint(22, 41)
    temp = rng.choice([f"-{temp_n}", f"минус {temp_n}", f"-{temp_n}°"])
    return (
        text.replace("{addr}", addr).replace("{street}", street).replace("{city}", city)
        .replace("{n}", str(rng.randint(1, 140))).replace("{temp}", temp)
        .replace("{days}", str(rng.randint(2, 9)))
    )


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _social(text: str, rng: random.Random, bank: ModuleType) -> str:
    slang = getattr(bank, "SLANG", [])
    for a, b in slang:
        if a in text and rng.random() < 0.3:
            text = text.replace(a, b)
    text = add_typos(text, 0.07, rng)
    r = rng.random()
    if r < 0.3:
        text = text.upper()
    elif r < 0.45:
        words = text.split(" ")
        k = rng.randrange(len(words))
        words[k] = words[k].upper()
        text = " ".join(words)
    if rng.random() < 0.7:
        text = text.replace(",", "").replace(".", "").replace(":", "")
    if rng.random() < 0.6:
        emo = rng.choice(getattr(bank, "EMOJI", ["😡", "🤬", "😢", "❗"]))
        text = f"{text} {emo * rng.randint(1, 3)}"
    if rng.random() < 0.2:
        text += "!" * rng.randint(1, 4)
    return text


def make_example(category: str, bank: ModuleType, style: str, rng: random.Random,
                 streets: Sequence[str], cities: Sequence[str],
                 fillers: Sequence[str]) -> dict[str, object]:
    """One synthetic appeal in ``style`` for ``category`` drawn from ``bank``."""
    problems = bank.PROBLEMS[category]
    text, urgent = rng.choice(problems)
    # Template id (bank, category, phrasing index): lets training cross-validate by phrasing
    # (group k-fold) so the urgency threshold is chosen on *unseen* phrasings.
    tpl = f"{bank.__name__.rsplit('.', 1)[-1]}:{category}:{problems.index((text, urgent))}"
    if rng.random() < 0.2:
        text2, urgent2 = rng.choice(problems)
        if text2 != text:
            text, urgent = f"{text}, {rng.choice(['а еще', 'кроме того', 'также'])} {text2}", (
                urgent or urgent2
            )
    p = _fill(text, rng, streets, cities)
    req = rng.choice(bank.REQUESTS[category])
    wrappers = {"social": bank.SOCIAL, "formal": bank.FORMAL, "hotline": bank.HOTLINE,
                "web": bank.WEB}[style]
    w = rng.choice(wrappers)
    out = (
        w.replace("{P}", _cap(p)).replace("{p}", p).replace("{r}", req)
        .replace("{rl}", req[:1].lower() + req[1:])
        .replace("{topic}", rng.choice(bank.TOPICS[category]))
        .replace("{name}", rng.choice(NAMES))
    )
    out = _fill(out, rng, streets, cities)
    if style != "social" and rng.random() < 0.25:
        out = f"{out} {rng.choice(fillers)}"
    if style == "social":
        out = _social(out, rng, bank)
    elif style == "web":
        out = add_typos(out, 0.03, rng)
        if rng.random() < 0.3:
            out = out.lower()
    else:
        out = add_typos(out, 0.01, rng)
    return {"text": out, "category": category, "urgent": bool(urgent), "style": style,
            "tpl": tpl}


def read_handwritten(path: Path) -> list[dict[str, object]]:
    """Hand-written lines: ``category<TAB>urgent(0/1)<TAB>style<TAB>text[<TAB># note]``.

    A line starting with ``#`` is a comment; an optional trailing ``<TAB># note`` (e.g. why a
    label was changed) is not part of the text. Each hand-written line is its own phrasing, so
    its template id is file + line number.
    """
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cat, urg, style, text = line.split("\t", 3)
        text = text.split("\t#", 1)[0]
        rows.append({"text": text.strip(), "category": cat, "urgent": urg == "1",
                     "style": f"{style}/handwritten", "tpl": f"{path.stem}:{n}"})
    return rows


def generate(bank: ModuleType, per_category: int, rng: random.Random, streets: Sequence[str],
             cities: Sequence[str], fillers: Sequence[str]) -> list[dict[str, object]]:
    """``per_category`` distinct appeals per category, styles drawn by channel weight."""
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    styles = list(STYLE_WEIGHTS)
    weights = list(STYLE_WEIGHTS.values())
    for cat in bank.PROBLEMS:
        made = attempts = 0
        while made < per_category and attempts < per_category * 20:
            attempts += 1
            style = rng.choices(styles, weights)[0]
            ex = make_example(cat, bank, style, rng, streets, cities, fillers)
            key = str(ex["text"]).lower()
            if key in seen:
                continue
            seen.add(key)
            out.append(ex)
            made += 1
    return out


def build(seed: int = SEED, train_per_category: int = 220,
          test_per_category: int = 30) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Deterministically build (train, test) rows."""
    rng = random.Random(seed)
    train = generate(bank_a, train_per_category, rng, STREETS_A, CITIES_A, FILLERS_A)
    train += read_handwritten(CORPUS_DIR / "handwritten_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_hard_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_urgency2_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_urgency3_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_urgency4_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_general5_train.tsv")
    train += read_handwritten(CORPUS_DIR / "handwritten_general6_train.tsv")
    test = generate(bank_b, test_per_category, random.Random(seed + 1), STREETS_B, CITIES_B,
                    FILLERS_B)
    test += read_handwritten(CORPUS_DIR / "handwritten_test.tsv")
    train_texts = {str(r["text"]).lower() for r in train}
    test = [r for r in test if str(r["text"]).lower() not in train_texts]
    rng.shuffle(train)
    random.Random(seed + 2).shuffle(test)
    return train, test


def _own_bank(bank: ModuleType, per_category: int, seed: int) -> list[dict[str, object]]:
    return generate(bank, per_category, random.Random(seed), bank.STREETS, bank.CITIES,
                    bank.FILLERS)


def check_bank_rows(name: str, train_texts: set[str]) -> list[dict[str, object]]:
    """A check bank's appeals (``CHECK_BANKS[name]``), minus any text training also has."""
    bank, offset, per_category = CHECK_BANKS[name]
    rows = _own_bank(bank, per_category, SEED + offset)
    return [r for r in rows if str(r["text"]).lower() not in train_texts]


def extra_bank_rows(name: str) -> list[dict[str, object]]:
    """A training bank's appeals (``EXTRA_TRAINING_BANKS[name]``), shuffled."""
    bank, offset, per_category = EXTRA_TRAINING_BANKS[name]
    rows = _own_bank(bank, per_category, SEED + offset)
    random.Random(SEED + offset + 1).shuffle(rows)
    return rows


def write_jsonl(rows: Sequence[dict[str, object]], path: Path) -> None:
    """One JSON object per line, UTF-8, non-ASCII kept readable."""
    with path.open("wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r) + b"\n")


def fresh_sets() -> dict[str, str]:
    """Every hand-written held-out check set, source TSV -> JSONL (never trained on: ``test*``):
    ``fresh_check<N>.tsv`` -> ``test_fresh<N>.jsonl``, so a new set needs no list edited."""
    return {p.name: p.name.replace("fresh_check", "test_fresh", 1).replace(".tsv", ".jsonl")
            for p in sorted(CORPUS_DIR.glob("fresh_check*.tsv"))}


def main() -> None:
    """Regenerate both splits and the fresh check sets in ``corpus/``."""
    train, test = build()
    write_jsonl(train, CORPUS_DIR / "train.jsonl")
    write_jsonl(test, CORPUS_DIR / "test.jsonl")
    train_texts = {str(r["text"]).lower() for r in train}
    for name in TRAINED_BANKS:
        rows = extra_bank_rows(name)
        write_jsonl(rows, CORPUS_DIR / name)
        train_texts |= {str(r["text"]).lower() for r in rows}
    for name in CHECK_BANKS:
        write_jsonl(check_bank_rows(name, train_texts), CORPUS_DIR / name)
    for src, dst in fresh_sets().items():
        rows = read_handwritten(CORPUS_DIR / src)
        for r in rows:
            del r["tpl"]
        write_jsonl(rows, CORPUS_DIR / dst)
    print(f"train: {len(train)} lines, test: {len(test)} lines -> {CORPUS_DIR}")


if __name__ == "__main__":
    main()
