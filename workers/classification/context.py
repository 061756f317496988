"""Context of an urgency-rule hit: is the emergency live, negated, hypothetical or already fixed?

An urgency rule (``lexicons/urgent.txt``) matches words, not situations: «газом не пахнет»,
«если прорвет стояк…» and «утечку газа устранили ночью» contain the same emergency words as
real emergencies. This module looks at the few tokens around each hit and gives it one of five
kinds (:data:`HIT_KINDS`):

``neg``
    a negation governs the hit: «не»/«ни»/«нет»/«без» right before a verb form or a symptom
    noun of the hit, or two tokens before with no other verb form between («не пахнет»,
    «никого не кусали», «без пострадавших»; not «не устранили, пахнет»), or a
    symptom noun in the genitive followed within four tokens by «нет»/«не» (the genitive of
    negation: «запаха газа в подъезде нет», «сосулек нет», «дыма не видно»; not when that
    «не» negates a repair verb: «утечки не устранили»). Rules that contain a negation
    themselves («нет вода», «не работать светофор») are never ``neg``, and nouns of vital
    resources are not negatable (the absence of heating *is* the emergency);
``hypo``
    a conditional / worry word up to six tokens before it («если», «вдруг», «боимся»,
    «на случай»…);
``fixed``
    a resolution verb in the past tense or a short passive participle («устранили»,
    «починили», «дали», «восстановлено»), not negated, after the hit or up to three tokens
    before it («устранили утечку»), with no "still / again" word («опять», «снова»,
    «до сих пор»…; plain «сейчас» is not one: «потушили, сейчас просим убрать») after the
    last such verb;
``past``
    a past-time word («вчера», «год назад», «в прошлом году») up to six tokens before or after
    a past-tense verb or a noun of the hit, and no "now / today / still / again" word
    («сейчас», «сегодня», «опять», «до сих пор»…) after the earlier of the two («в прошлом
    году горела свалка»; not «вчера заварили, а сегодня опять прорвало»);
``live``
    anything else. A rule with its own negation («нет вода», «светофор не работать») can only
    be ``hypo`` or ``fixed`` («светофор не работал с утра, к обеду починили»), never ``neg`` or
    ``past`` («вчера отключили, света нет» is still an emergency).

A hit is ``live`` if any of its positions is live (an emergency mentioned twice, once negated,
still counts). The urgency features use only live hits for the rule columns and the urgency hit
count, and add the counts of each kind plus a "past only" flag as extra columns
(:func:`context_row`): the model keeps the emergency words, but a negated or fixed hit no longer
reads as evidence of an emergency.

Token flags depend on one token only (its lemma and pymorphy3 tag), so the batch encoder keeps
them per token next to the other per-token features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from .lexicons import _Entry
from .normalize import lemma, morph_tag

__all__ = [
    "CTX_NAMES",
    "HIT_KINDS",
    "context_row",
    "hit_kinds",
    "past_only",
    "token_flags",
    "word_lists",
]

#: Kinds of an urgency-rule hit, in column order.
HIT_KINDS: tuple[str, ...] = ("live", "neg", "hypo", "fixed", "past")
#: Columns of the context block: one count per hit kind, then "past only".
CTX_NAMES: tuple[str, ...] = (*HIT_KINDS, "past_only")

# Lemmas (pymorphy3 normal forms, ё folded).
NEG = frozenset({"не", "ни", "нет", "нету", "без"})
#: Conditional, worry and "just in case" words: the emergency is not happening.
HYPO = frozenset({"если", "вдруг", "бояться", "опасаться", "чтобы", "иначе", "когда-нибудь",
                  "случай"})
#: "Still / again": the emergency is back or not over, whatever was fixed before.
AGAIN = frozenset({"опять", "снова", "продолжать", "сей", "по-прежнему"})
#: "Now / today" (or still / again): the text describes the present, not only the past.
NOW = AGAIN | {"сейчас", "сегодня", "теперь"}
#: Past time: the event is over unless a "now / still / again" word follows. «назад» right
#: after «час» / «минута» («скорую вызвали два часа назад») does not count.
PAST = frozenset({"вчера", "позавчера", "назад", "прошлый", "ранее"})
SHORT_TIME = frozenset({"час", "минута", "полчаса"})
#: Verbs that end an emergency (counted in the past tense / as short passive participles).
FIX = frozenset({
    "устранить", "починить", "отремонтировать", "восстановить", "заварить", "откачать", "дать",
    "включить", "подключить", "наладить", "заменить", "потушить", "ликвидировать", "убрать",
    "спилить", "сбить", "закрыть", "перекрыть", "вызволить", "освободить", "вытащить",
    "эвакуировать", "запустить", "вернуть", "исправить", "залатать", "отловить",
})
#: Nouns that name a symptom (can be negated: «запаха нет», «пожара не было»).
SYMPTOM = frozenset({
    "запах", "дым", "утечка", "протечка", "течь", "пожар", "возгорание", "искра", "огонь",
    "пламя", "угроза", "опасность", "гарь", "задымление", "замыкание", "прорыв", "обрушение",
    "порыв", "потоп", "затопление", "подтопление", "авария", "дтп", "пострадавший", "сосулька",
    "сосуля", "глыба", "наледь", "гололед", "гололедица", "трещина", "провал",
})

F_NEG = 1
F_HYPO = 4
F_NOW = 8
F_PAST = 16
F_FIX = 32  # a resolution verb in the past tense / short passive participle
F_NEGATABLE = 64  # a verb form or a symptom noun
F_AGAIN = 128
F_GENT = 256  # a symptom noun in the genitive (can be negated by a following «нет»)
F_FIXLEM = 512  # a resolution verb in any form
F_PRESENT = 1024  # a verb form that is not in the past tense (present, future, infinitive…)
F_SHORT = 2048  # «час», «минута»: «два часа назад» is not a past event
F_NOT = 4096  # «не» / «ни» (negates the next verb; «нет» does not)

_VERBISH = ("VERB", "INFN", "PRTS", "PRTF", "GRND")


@lru_cache(maxsize=262_144)
def token_flags(token: str, fix: bool = True) -> int:
    """Context flags of one normalised token (cached: the inference hot path sees each once);
    ``fix`` as in :func:`.normalize.lemma`."""
    lem = lemma(token, fix)
    f = 0
    if lem in NEG:
        f |= F_NEG
        if lem in ("не", "ни"):
            f |= F_NOT
        return f
    if lem in HYPO:
        f |= F_HYPO
    if lem in NOW:
        f |= F_NOW
    if lem in AGAIN:
        f |= F_AGAIN
    if lem in PAST:
        f |= F_PAST
    if lem in SHORT_TIME:
        f |= F_SHORT
    if lem in FIX:
        f |= F_FIXLEM
    if len(token) > 2:
        tag = morph_tag(token, fix)
        if lem in SYMPTOM:
            f |= F_NEGATABLE
            if "gent" in tag:
                f |= F_GENT
        elif any(k in tag for k in _VERBISH):
            f |= F_NEGATABLE
            if "past" not in tag:
                f |= F_PRESENT
        if lem in FIX and (("VERB" in tag and "past" in tag) or "PRTS" in tag):
            f |= F_FIX
    elif lem in SYMPTOM:
        f |= F_NEGATABLE
    return f


def _fixes(flags: Sequence[int]) -> tuple[list[bool], int, bool]:
    """Per position: an effective resolution verb (not negated); the last one; whether a
    "still / again" word follows it (plain «сейчас» does not: «потушили, сейчас просим…»)."""
    n = len(flags)
    fix = [False] * n
    for i, f in enumerate(flags):
        if f & F_FIX and not any(flags[j] & F_NEG for j in range(max(0, i - 2), i)):
            fix[i] = True
    last = max((i for i in range(n) if fix[i]), default=-1)
    again = last >= 0 and any(flags[k] & F_AGAIN for k in range(last + 1, n))
    return fix, last, again


def _is_past(flags: Sequence[int], j: int) -> bool:
    return bool(flags[j] & F_PAST) and not any(
        flags[k] & F_SHORT for k in range(max(0, j - 2), j))


def _position_kind(p: int, flags: Sequence[int], fix: list[bool], last_fix: int,
                   again: bool, own_neg: bool) -> str:
    n = len(flags)
    if not own_neg and flags[p] & F_NEGATABLE and (
        (p >= 1 and flags[p - 1] & F_NEG)
        or (p >= 2 and flags[p - 2] & F_NEG and not flags[p - 1] & F_NEGATABLE)
        or (flags[p] & F_GENT and any(
            flags[j] & F_NEG
            and not (flags[j] & F_NOT and j + 1 < n and flags[j + 1] & F_FIXLEM)
            for j in range(p + 1, min(n, p + 5))))
    ):
        return "neg"
    if any(flags[j] & F_HYPO for j in range(max(0, p - 6), p)):
        return "hypo"
    if not again and (last_fix > p or any(fix[j] for j in range(max(0, p - 3), p))):
        return "fixed"
    if not own_neg and not flags[p] & F_PRESENT and any(
            _is_past(flags, j) and not any(flags[k] & F_NOW for k in range(min(j, p) + 1, n))
            for j in range(max(0, p - 6), min(n, p + 7))):
        return "past"
    return "live"


def hit_kinds(entries: Sequence[_Entry], lemmas: Sequence[str], flags: Sequence[int],
              positions: dict[str, list[int]]) -> list[str]:
    """Kind (:data:`HIT_KINDS`) of each matched urgency entry, in the order given.

    The positions of a hit are those of its verb forms and symptom nouns, in any part
    («прорвать труба»: «прорвать», not the pipe; «газовый & утечка»: «утечка»), or, when it
    has none, those of the lemmas of its first phrase (the emergency itself; ``&`` parts are
    conditions such as frost). Negation words are left out. The kind of a hit is ``live`` if
    any of those positions is live, else the most common kind among them (ties: ``neg``
    before ``hypo`` before ``fixed`` before ``past``).
    """
    out: list[str] = []
    state: tuple[list[bool], int, bool] | None = None
    for e in entries:
        own_neg = any(m in NEG for q in e.parts for m in q)
        if state is None:
            state = _fixes(flags)
        fix, last_fix, again = state
        lems = dict.fromkeys(m for q in e.parts for m in q if m not in NEG)
        pred = [p for lem in lems for p in positions.get(lem, ()) if flags[p] & F_NEGATABLE]
        if not pred:
            first = dict.fromkeys(m for m in e.parts[0] if m not in NEG)
            pred = [p for lem in first for p in positions.get(lem, ())]
        kinds = [_position_kind(p, flags, fix, last_fix, again, own_neg) for p in pred]
        if not kinds or "live" in kinds:
            out.append("live")
        else:
            out.append(max(HIT_KINDS[1:], key=kinds.count))
    return out


def past_only(flags: Sequence[int]) -> bool:
    """A past-time word («вчера», «неделю назад») with no "still / again" word after it."""
    last_past = last_now = -1
    for i, f in enumerate(flags):
        if _is_past(flags, i):
            last_past = i
        if f & F_NOW:
            last_now = i
    return last_past >= 0 and last_now < last_past


def context_row(kinds: Sequence[str], flags: Sequence[int]) -> list[float]:
    """Context block values of one text: ``log1p`` count per hit kind, then "past only" (1.0
    when the text has an urgency hit and :func:`past_only`)."""
    row = [math.log1p(sum(1 for k in kinds if k == name)) for name in HIT_KINDS]
    row.append(1.0 if kinds and past_only(flags) else 0.0)
    return row


def word_lists() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The context word lists, sorted (part of the model version: editing them changes the
    features, so it is another model)."""
    lists = {"neg": NEG, "hypo": HYPO, "again": AGAIN, "now": NOW, "past": PAST,
             "short_time": SHORT_TIME, "fix": FIX, "symptom": SYMPTOM}
    return tuple((name, tuple(sorted(words))) for name, words in lists.items())
