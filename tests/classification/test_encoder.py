"""The vectorised batch encoder must build exactly the matrix of the per-text recipe.

``_reference_transform`` is the featuriser's original loop (one text at a time, 18 lexicon
scans per text) kept here as the specification; the encoder's matrix — columns, float32 values
and their order in each row — must equal it bit for bit, for the docs path (training) and the
texts path (inference), with cold and warm caches, after a lexicon edit and when the bounded
caches are dropped mid-stream.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from workers.classification import encoder
from workers.classification.classifier import DEFAULT_MODEL_PATH, Classifier, read_artifact
from workers.classification.context import context_row, hit_kinds, token_flags
from workers.classification.features import _STOP, Doc, Featurizer, analyse, word_terms
from workers.classification.lexicons import CUE_NAMES, _positions, load_lexicons
from workers.classification.normalize import FROST_TOKEN, chunk_tokens, split_chunks, tokenize

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_outputs.jsonl.gz"


def _reference_transform(
    f: Featurizer, docs: Sequence[Doc]
) -> tuple[sparse.csr_matrix, np.ndarray, list[int]]:
    wv = f.word_vocab
    wr: list[int] = []
    wc: list[int] = []
    cr: list[int] = []
    cc: list[int] = []
    known: list[int] = []
    lex_rows: list[list[float]] = []
    ur: list[int] = []
    uc: list[int] = []
    uv: list[float] = []
    xr: list[int] = []
    xc: list[int] = []
    xv: list[float] = []
    rc = f.rule_cols
    n_rules = len(rc)
    rule = np.zeros(len(docs), dtype=bool)
    for i, d in enumerate(docs):
        cols = [j for t in word_terms(d.lemmas) if (j := wv.get(t)) is not None]
        wc.extend(cols)
        wr.extend([i] * len(cols))
        known.append(sum(1 for m in d.lemmas
                         if m not in _STOP and m in wv and m != FROST_TOKEN))
        start = len(cc)
        for t in d.tokens:
            cc.extend(f._char_idx(t))
        cr.extend([i] * (len(cc) - start))
        assert f.lexicons is not None
        lx = f.lexicons
        pos = _positions(d.lemmas)
        counts = lx.category_counts(d.lemmas)
        u_entries = lx.urgent.match_entries(d.lemmas, pos)
        c_hits = lx.calm.matches(d.lemmas, pos)
        urg, calm = len(u_entries), len(c_hits)
        rule[i] = urg > 0 and calm == 0
        w = f.urg_weight
        u_hits = [e.raw for e in u_entries]
        if f.context and u_entries:
            # Only live hits count as urgency evidence; each kind gets a context column.
            cf = [token_flags(t) for t in d.tokens]
            kinds = hit_kinds(u_entries, d.lemmas, cf, pos)
            u_hits = [h for h, k in zip(u_hits, kinds, strict=True) if k == "live"]
            for j, v in enumerate(context_row(kinds, cf)):
                if v:
                    xr.append(i)
                    xc.append(j)
                    xv.append(v * w)
        n_urg = len(u_hits)
        lex_rows.append([math.log1p(c) * f.lex_weight for c in (*counts, n_urg, calm)])
        live = () if c_hits else u_hits
        for key in [*("u:" + h for h in live), *("c:" + h for h in c_hits)]:
            j = rc.get(key)
            if j is not None:
                ur.append(i)
                uc.append(j)
                uv.append(w)
        n_cues = len(f.cue_names)  # cues the model was trained with (a prefix)
        for k, cnt in enumerate(lx.cue_counts(d.lemmas, pos)[:n_cues]):
            if cnt:
                ur.append(i)
                uc.append(n_rules + k)
                uv.append(w * math.log1p(cnt))
        if n_urg and not calm:
            ur.append(i)
            uc.append(n_rules + n_cues)
            uv.append(w)
    n = len(docs)
    blocks = [
        f._block(wr, wc, n, len(wv), f.word_idf),
        f._block(cr, cc, n, len(f.char_vocab), f.char_idf),
        sparse.csr_matrix(np.asarray(lex_rows, np.float32).reshape(n, -1)),
        sparse.csr_matrix(
            (np.asarray(uv, np.float32), (np.asarray(ur, np.int32), np.asarray(uc, np.int32))),
            shape=(n, f.n_urg), dtype=np.float32),
    ]
    if f.n_ctx:
        blocks.append(sparse.csr_matrix(
            (np.asarray(xv, np.float32), (np.asarray(xr, np.int32), np.asarray(xc, np.int32))),
            shape=(n, f.n_ctx), dtype=np.float32))
    return sparse.hstack(blocks, format="csr", dtype=np.float32), rule, known


def _same(a: tuple[sparse.csr_matrix, np.ndarray, list[int]],
          b: tuple[sparse.csr_matrix, np.ndarray, list[int]]) -> None:
    xa, xb = a[0], b[0]
    assert xa.shape == xb.shape
    assert np.array_equal(xa.indptr, xb.indptr)
    assert np.array_equal(xa.indices, xb.indices)
    assert xa.data.dtype == xb.data.dtype == np.float32
    assert np.array_equal(xa.data.view(np.uint32), xb.data.view(np.uint32))  # bit for bit
    assert np.array_equal(a[1], b[1])
    assert list(a[2]) == list(b[2])


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def _fresh() -> Classifier:
    return Classifier(read_artifact(DEFAULT_MODEL_PATH), lexicons=load_lexicons())


def test_chunked_tokenizer_equals_tokenize(texts: list[str]) -> None:
    extra = ["ААААА ббббб ___ 1111 минус   30 -5° гр", "x\u2028y\x1cz", "mин-25 min5",
             "ёЁЁЁ", "воооды нееет!!!!", "a_b_c 3ьь", "", "   ", "—–−-"]
    for t in [*texts, *extra]:
        assert [x for c in split_chunks(t) for x in chunk_tokens(c)] == tokenize(t), t


def test_encoder_matrix_equals_reference(texts: list[str]) -> None:
    clf = _fresh()
    f = clf.featurizer
    for batch in (texts[:700], texts[700:2000], texts[:700], texts[2000:]):  # cold, then warm
        docs = [analyse(t) for t in batch]
        ref = _reference_transform(f, docs)
        _same(f.transform(docs), ref)
        _same(f.transform_texts(batch), ref)


def test_non_string_and_empty_inputs() -> None:
    f = _fresh().featurizer
    odd: list[object] = [None, "", 5, "😡", "   ", "Пахнет газом", b"bytes"]
    ref = _reference_transform(f, [analyse(t if isinstance(t, str) else "") for t in odd])
    _same(f.transform_texts(odd), ref)


def test_lexicon_edit_after_load_is_seen(texts: list[str]) -> None:
    clf = _fresh()
    f = clf.featurizer
    sample = texts[:300]
    f.transform_texts(sample)  # warm the caches with the old lexicons
    assert f.lexicons is not None
    f.lexicons.urgent.add("нет фонарь & темно")
    f.lexicons.categories["roads"].add("яма")
    f.lexicons.calm.add("плановый")
    docs = [analyse(t) for t in sample]
    _same(f.transform_texts(sample), _reference_transform(f, docs))


def test_bounded_caches_drop_and_rebuild(texts: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "TOKEN_LIMIT", 500)
    monkeypatch.setattr(encoder, "CHUNK_LIMIT", 700)
    f = _fresh().featurizer
    for i in range(0, 1500, 100):
        batch = texts[i : i + 100]
        _same(f.transform_texts(batch), _reference_transform(f, [analyse(t) for t in batch]))
        enc = f._enc
        assert enc is not None
        assert len(enc._rid) <= 500 + 2000 and len(enc._chunks) <= 700 + 2000


def test_model_without_cue_names_keeps_the_four_older_cues(texts: list[str]) -> None:
    # Models trained before the habitual cue (urgency rework #6) have no ``cue_names`` in their
    # state: they get the first four cue columns, and the encoder still matches the reference.
    shipped = _fresh().featurizer
    assert shipped.cue_names == CUE_NAMES
    state = shipped.state()
    del state["cue_names"]
    f = Featurizer.from_state(state, load_lexicons())
    assert f.cue_names == CUE_NAMES[:4]
    assert f.n_urg == shipped.n_urg - 1
    batch = texts[:400]
    _same(f.transform_texts(batch), _reference_transform(f, [analyse(t) for t in batch]))
    state["cue_names"] = ["past", "habitual"]
    with pytest.raises(ValueError, match="unknown urgency cue"):
        Featurizer.from_state(state, load_lexicons())


def test_habitual_cue_column_is_set() -> None:
    f = _fresh().featurizer
    col = f.block_slices()["urg"].start + len(f.rule_cols) + CUE_NAMES.index("habitual")
    x, _, _ = f.transform_texts(["каждую весну свалку поджигают", "свалку подожгли, дым"])
    assert x[0, col] > 0 and x[1, col] == 0
