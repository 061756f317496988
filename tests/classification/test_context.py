"""Context of urgency-rule hits (:mod:`workers.classification.context`): negated, hypothetical,
fixed and past emergencies must not read as live ones, and real emergencies must stay live."""

from __future__ import annotations

import pytest

from workers.classification.classifier import Classifier, read_artifact
from workers.classification.context import HIT_KINDS, context_row, hit_kinds, token_flags
from workers.classification.features import Featurizer, analyse
from workers.classification.lexicons import _positions, load_lexicons, parse_lexicon_lines

_LEX = load_lexicons()


def _kinds(text: str) -> dict[str, str]:
    d = analyse(text)
    pos = _positions(d.lemmas)
    entries = _LEX.urgent.match_entries(d.lemmas, pos)
    flags = [token_flags(t) for t in d.tokens]
    return {e.raw: k for e, k in zip(entries, hit_kinds(entries, d.lemmas, flags, pos),
                                      strict=True)}


@pytest.mark.parametrize(("text", "kind"), [
    # negated symptoms: «не» before a verb, the genitive of negation after a symptom noun
    ("газом в подъезде не пахнет, вопрос по счетчику", "neg"),
    ("трубу не прорвало, просто в подвале сыро", "neg"),
    ("запаха газа в подъезде нет, закройте подвал", "neg"),
    ("сосулек на крыше нет, почистите водостоки", "neg"),
    # hypothetical / just in case
    ("если прорвет старый стояк, зальет всех, замените трубы", "hypo"),
    ("подскажите номер газовой службы на случай утечки", "hypo"),
    # fixed: a repair verb after the hit, or right before it
    ("вчера прорвало трубу в подвале, аварийка все заварила", "fixed"),
    ("утечку газа устранили ночью, спасибо", "fixed"),
    ("светофор на Мира не работал с утра, к обеду его починили", "fixed"),
    # over: a past-time word and nothing about now
    ("в прошлом году горела свалка, просим ее рекультивировать", "past"),
])
def test_look_alikes_are_not_live(text: str, kind: str) -> None:
    kinds = _kinds(text)
    assert kinds, text
    assert set(kinds.values()) == {kind}, kinds


@pytest.mark.parametrize("text", [
    "в подъезде сильно пахнет газом, аварийка не едет",
    "в подвале прорвало трубу, вода хлещет",
    # a repair that did not hold, or a negated repair
    "вчера трубу заварили, а сегодня опять прорвало трубу, подвал в воде",
    "утечки газа не устранили, в подъезде пахнет газом",
    "прорвало трубу, аварийка приехала и уехала, вода хлещет до сих пор",
    # rules with their own negation are never "negated"; «два часа назад» is not the past
    "нет воды третий день, обещали дать вчера",
    "вчера отключили свет, света нет до сих пор",
    "человеку плохо, скорую вызвали два часа назад, скорая не едет",
    # a resource noun after «не работает» is the emergency itself
    "в квартире не работает отопление, на улице -31",
])
def test_emergencies_stay_live(text: str) -> None:
    kinds = _kinds(text)
    assert kinds, text
    assert "live" in kinds.values(), kinds


def test_context_row_counts_kinds_and_past_only() -> None:
    flags = [token_flags(t) for t in analyse("вчера прорвало трубу").tokens]
    row = context_row(["fixed", "live", "live"], flags)
    assert len(row) == len(HIT_KINDS) + 1
    assert row[HIT_KINDS.index("live")] > row[HIT_KINDS.index("fixed")] > 0
    assert row[HIT_KINDS.index("neg")] == 0 and row[-1] == 1.0
    assert context_row([], flags)[-1] == 0.0  # "past only" needs an urgency hit
    now = [token_flags(t) for t in analyse("вчера прорвало трубу, течет до сих пор").tokens]
    assert context_row(["live"], now)[-1] == 0.0


def test_negated_rule_does_not_feed_the_urgency_evidence(clf: Classifier) -> None:
    f = clf.featurizer
    assert f.context and f.n_ctx == len(HIT_KINDS) + 1
    x, rule, _ = f.transform_texts(["газом в подъезде не пахнет, вопрос по счетчику",
                                    "в подъезде пахнет газом"])
    ctx = f.block_slices()["ctx"]
    neg = HIT_KINDS.index("neg")
    assert x[0, ctx.start + neg] > 0 and x[0, ctx.start] == 0  # no live hit
    assert x[1, ctx.start] > 0 and x[1, ctx.start + neg] == 0
    assert rule.tolist() == [False, True]  # the calm phrase vetoes the first text


def test_model_without_context_state_loads_without_context_block(clf: Classifier) -> None:
    state = clf.featurizer.state()
    del state["context"]
    f = Featurizer.from_state(state, clf.lexicons)
    assert not f.context and f.n_ctx == 0
    assert f.n_features == clf.featurizer.n_features - clf.featurizer.n_ctx


def test_shipped_model_is_classified_with_context() -> None:
    from workers.classification.classifier import DEFAULT_MODEL_PATH

    art = read_artifact(DEFAULT_MODEL_PATH)
    assert art["featurizer"]["context"] is True
    assert art["meta"]["features"] == "context-1+habitual+frost-3"


def test_context_follows_lexicon_edits() -> None:
    lex = parse_lexicon_lines("urgent", ["пахнуть хлор"])
    d = analyse("хлором не пахнет")
    pos = _positions(d.lemmas)
    entries = lex.match_entries(d.lemmas, pos)
    flags = [token_flags(t) for t in d.tokens]
    assert hit_kinds(entries, d.lemmas, flags, pos) == ["neg"]
