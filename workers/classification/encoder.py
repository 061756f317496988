"""Batch feature assembly for :meth:`Featurizer.transform` — the inference hot path.

Everything that depends on one token only is computed once per distinct token and kept in a
table (a *record*: lemma, character n-gram columns, unigram / «не X» columns, stop-word and
bigram ids, the lexicon entries anchored at its lemma); everything that depends on one
whitespace-separated chunk of text («отопления,», «-30°») is one dict hit to a tuple of
records. A batch is then a flat array of record ids, and the word, character, lexicon and
urgency blocks are built for all texts at once with numpy: no per-n-gram Python loop, and one
pass over each text's distinct lemmas instead of one scan per lexicon (18 of them).

The result is bit-for-bit the matrix the straightforward per-text loop produced (same columns,
same float32 values, canonical CSR), which ``tests/classification/test_golden.py`` and
``test_encoder.py`` hold it to.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from .context import HIT_KINDS, context_row, hit_kinds, token_flags
from .lexicons import CATEGORIES, CUE_NAMES, _Entry, _positions, entry_matches
from .normalize import (
    FROST_TOKEN,
    MAX_TOKENS,
    SpellBudget,
    char_ngrams,
    chunk_tokens,
    lemma,
    needs_spell_fix,
    spell_fix_mask,
    split_chunks,
)

if TYPE_CHECKING:
    from .features import Doc, Featurizer

__all__ = ["BatchEncoder", "tfidf_inplace"]

#: Distinct tokens / chunks kept before the caches are dropped and rebuilt (bounded memory).
TOKEN_LIMIT = 300_000
CHUNK_LIMIT = 300_000

_N_CAT = len(CATEGORIES)
_SLOT_URG = _N_CAT
_SLOT_CALM = _N_CAT + 1
_N_SLOTS = _N_CAT + 2 + len(CUE_NAMES)

#: One lexicon entry as the encoder sees it: slot, rule column (or -1), the entry, whether it
#: matches whenever its lemma is present, and the lemmas it needs.
_Hit = tuple[int, int, _Entry, bool, frozenset[str]]


class BatchEncoder:
    """Caches and vectorised assembly for one :class:`Featurizer` (rebuilt if it changes)."""

    def __init__(self, feat: Featurizer, stop: frozenset[str], neg: frozenset[str]) -> None:
        self.feat = feat
        self.signature = self.signature_of(feat)
        self._stop = stop
        self._neg = neg
        wv = feat.word_vocab
        # Bigram terms «a b» as integer pairs, so a whole batch is looked up with searchsorted.
        # Lemmas never contain a space (tokens are letter runs), so «a b» splits one way only.
        bid: dict[str, int] = {}
        pairs: list[tuple[int, int, int]] = []
        for term, j in wv.items():
            a, sep, b = term.partition(" ")
            if sep and " " not in b:
                pairs.append((bid.setdefault(a, len(bid)), bid.setdefault(b, len(bid)), j))
        self._bid = bid
        self._nb = max(len(bid), 1)
        keys = np.array([a * self._nb + b for a, b, _ in pairs], dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self._bi_keys = keys[order]
        self._bi_cols = np.array([j for _, _, j in pairs], dtype=np.int64)[order]
        # Lexicons: one index over all of them, rule columns resolved once.
        self._lex = self._lexicon_index(feat)
        self._clear()

    @staticmethod
    def _lexicon_index(feat: Featurizer) -> dict[str, tuple[_Hit, ...]]:
        """Lemma → entries of every lexicon that need it, with slot and rule column.

        An entry can only match when every lemma of its positive parts occurs in the text, so it
        is filed under the rarest of them (highest idf; outside the vocabulary = rarest): texts
        rarely trigger a check of «нет отопление & мороз» just because they contain «нет». Each
        entry is filed once and each distinct lemma of a text looked up once, so each entry is
        tested at most once per text, as in :meth:`Lexicon.matches`.
        """
        if feat.lexicons is None:
            return {}
        wv, idf = feat.word_vocab, feat.word_idf
        rc = feat.rule_cols

        def rarity(lem: str) -> tuple[float, str]:
            j = wv.get(lem)
            return (math.inf if j is None else float(idf[j]), lem)

        index: dict[str, list[_Hit]] = {}
        n_slots = _SLOT_CALM + 1 + len(feat.cue_names)  # cues the model has no column for: off
        for slot, lx in enumerate(feat.lexicons.slots()):
            if lx is None or slot >= n_slots:
                continue
            for e in lx.entries:
                need = frozenset(lem for part in e.parts for lem in part)
                always = len(e.parts) == 1 and len(e.parts[0]) == 1 and not e.negated
                col = -1
                if slot == _SLOT_URG:
                    col = rc.get("u:" + e.raw, -1)
                elif slot == _SLOT_CALM:
                    col = rc.get("c:" + e.raw, -1)
                index.setdefault(max(need, key=rarity), []).append((slot, col, e, always, need))
        return {lem: tuple(v) for lem, v in index.items()}

    @staticmethod
    def signature_of(feat: Featurizer) -> tuple[Any, ...]:
        lex = feat.lexicons.signature() if feat.lexicons is not None else ()
        return (lex, id(feat.word_vocab), len(feat.word_vocab), id(feat.char_vocab),
                len(feat.char_vocab), id(feat.rule_cols), len(feat.rule_cols), feat.context,
                feat.cue_names)

    # -- record table --------------------------------------------------------------------
    def _clear(self) -> None:
        self._rid: dict[str, int] = {}
        #: Records of unknown words lemmatised without a spelling fix (a text past its
        #: :data:`.normalize.MAX_SPELL_FIXES`).
        self._rid_raw: dict[str, int] = {}
        #: Chunks with no word to spell-correct → record ids; chunks with one → their tokens
        #: (whether a word is corrected depends on the text's budget, not on the chunk).
        self._chunks: dict[str, tuple[int, ...]] = {}
        self._fix_chunks: dict[str, tuple[str, ...]] = {}
        self._lem: list[str] = []
        self._chars: list[bytes] = []
        self._hits: list[tuple[_Hit, ...]] = []
        cap = 1024
        self._wcol = np.empty(cap, np.int64)
        self._negcol = np.empty(cap, np.int64)
        self._bigram = np.empty(cap, np.int64)
        self._nch = np.empty(cap, np.int64)
        self._flags = np.empty(cap, np.uint8)  # 1 known, 2 content, 4 «не/ни», 8 lexicon
        self._cflags = np.empty(cap, np.uint16)  # context flags (:func:`.context.token_flags`)

    def _grow(self) -> None:
        cap = 2 * len(self._wcol)
        for name in ("_wcol", "_negcol", "_bigram", "_nch", "_flags", "_cflags"):
            old = getattr(self, name)
            new = np.empty(cap, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _record(self, tok: str, fix: bool = True) -> int:
        """Id of the record for one normalised token (created on first sight); ``fix`` false:
        lemmatised without a spelling fix (:func:`.normalize.spell_fix_mask`)."""
        table = self._rid if fix else self._rid_raw
        rid = table.get(tok)
        if rid is not None:
            return rid
        feat, stop = self.feat, self._stop
        wv, cv = feat.word_vocab, feat.char_vocab
        lem = lemma(tok, fix)
        rid = len(self._lem)
        if rid >= len(self._wcol):
            self._grow()
        chars = array("i", [j for g in char_ngrams(tok) if (j := cv.get(g)) is not None])
        w = wv.get(lem)
        in_stop = lem in stop
        content = not in_stop and len(lem) > 1
        hits = self._lex.get(lem, ())
        self._lem.append(lem)
        self._chars.append(chars.tobytes())
        self._hits.append(hits)
        self._wcol[rid] = -1 if w is None else w
        self._negcol[rid] = -1 if in_stop else wv.get("не~" + lem, -1)
        self._bigram[rid] = self._bid.get(lem, -1) if content else -1
        self._nch[rid] = len(chars)
        # The frost token is no known word: «-1» or a stray dash and digits alone is junk, not
        # a frost appeal (it was routed as urgent housing at 0.70; review of session 16). The
        # word «мороз» shares the token, so it alone is junk too; with any other word it counts.
        known = not in_stop and w is not None and lem != FROST_TOKEN
        self._flags[rid] = (known | (content << 1)
                            | ((lem in self._neg) << 2) | (bool(hits) << 3))
        self._cflags[rid] = token_flags(tok, fix) if feat.context else 0
        table[tok] = rid
        return rid

    def _check_limits(self) -> None:
        if (len(self._rid) + len(self._rid_raw) > TOKEN_LIMIT
                or len(self._chunks) + len(self._fix_chunks) > CHUNK_LIMIT):
            self._clear()

    # -- batches -------------------------------------------------------------------------
    def ids_of_texts(self, texts: Sequence[object]) -> tuple[list[int], list[int]]:
        """Record ids of all tokens of all texts (flat) and the token count per text."""
        self._check_limits()
        get = self._chunks.get
        get_fix = self._fix_chunks.get
        record = self._record
        flat: list[int] = []
        lens: list[int] = []
        for t in texts:
            start = len(flat)
            end = start + MAX_TOKENS
            budget = SpellBudget()  # the unknown words this text may still have corrected
            for c in split_chunks(t if isinstance(t, str) else ""):
                ids = get(c)
                if ids is not None and len(flat) + len(ids) <= end:
                    flat += ids
                    continue
                toks = get_fix(c)
                if toks is None:
                    toks = tuple(chunk_tokens(c))
                    if not any(map(needs_spell_fix, toks)):
                        if len(flat) + len(toks) <= end:
                            ids = self._chunks[c] = tuple(map(record, toks))
                            flat += ids
                            continue
                    else:
                        self._fix_chunks[c] = toks
                # The text's last chunk(s) within MAX_TOKENS, or a chunk with unknown words:
                # token by token, on the text's spelling budget (as spell_fix_mask).
                for tok in toks[: end - len(flat)]:
                    flat.append(record(tok, budget.allow(tok)))
                if len(flat) >= end:
                    break
            lens.append(len(flat) - start)
        return flat, lens

    def ids_of_docs(self, docs: Sequence[Doc]) -> tuple[list[int], list[int]]:
        """Same for already analysed docs (training); tokens are keyed as they are."""
        self._check_limits()
        flat: list[int] = []
        lens: list[int] = []
        for d in docs:
            flat.extend(self._record(t, m)
                        for t, m in zip(d.tokens, spell_fix_mask(d.tokens), strict=True))
            lens.append(len(d.tokens))
        return flat, lens

    def encode(self, flat: list[int], lens: list[int]
               ) -> tuple[sparse.csr_matrix, np.ndarray, list[int]]:
        """Feature matrix, rule flags and known-word counts (see :meth:`Featurizer.transform`)."""
        feat = self.feat
        n = len(lens)
        ids = np.array(flat, dtype=np.int64)
        doc_of = np.repeat(np.arange(n, dtype=np.int64), np.asarray(lens, np.int64))
        flags = self._flags[ids]
        known = np.bincount(doc_of[(flags & 1).astype(bool)], minlength=n)

        # Word block: unigrams, bigrams of adjacent content lemmas, «не~X».
        wcol = self._wcol[ids]
        m = wcol >= 0
        rows = [doc_of[m]]
        cols = [wcol[m]]
        cidx = np.flatnonzero(flags & 2)
        if len(cidx) > 1:
            a, b = cidx[:-1], cidx[1:]
            ba, bb = self._bigram[ids[a]], self._bigram[ids[b]]
            ok = (doc_of[a] == doc_of[b]) & (ba >= 0) & (bb >= 0)
            if ok.any() and len(self._bi_keys):
                key = ba[ok] * self._nb + bb[ok]
                pos = np.minimum(np.searchsorted(self._bi_keys, key), len(self._bi_keys) - 1)
                found = self._bi_keys[pos] == key
                rows.append(doc_of[a[ok][found]])
                cols.append(self._bi_cols[pos[found]])
        if len(ids) > 1:
            nxt = self._negcol[ids[1:]]
            nm = ((flags[:-1] & 4).astype(bool) & (nxt >= 0) & (doc_of[:-1] == doc_of[1:]))
            rows.append(doc_of[:-1][nm])
            cols.append(nxt[nm])
        blocks = [_tfidf_block(np.concatenate(rows), np.concatenate(cols), n,
                               len(feat.word_vocab), feat.word_idf)]

        # Character block: the n-gram columns of every token, joined as raw int32 bytes.
        chars = self._chars
        cc = np.frombuffer(b"".join(map(chars.__getitem__, flat)), dtype=np.int32)
        cr = np.repeat(doc_of, self._nch[ids])
        blocks.append(_tfidf_block(cr, cc, n, len(feat.char_vocab), feat.char_idf))

        rule = np.zeros(n, dtype=bool)
        if feat.lexicons is not None:
            counts, rule_hits, live, ctx = self._lexicon_hits(flat, lens, ids, flags, doc_of, n)
            lex_w = feat.lex_weight
            c14 = counts[:, : _N_CAT + 2].copy()
            urg, calm = counts[:, _SLOT_URG], counts[:, _SLOT_CALM]
            rule = (urg > 0) & (calm == 0)
            if feat.context:
                # Negated / hypothetical / fixed urgency hits are not evidence of an emergency:
                # only live hits count here and in the rule columns (see :mod:`.context`).
                c14[:, _SLOT_URG] = live
            tab = np.array([math.log1p(k) * lex_w for k in range(int(c14.max(initial=0)) + 1)])
            blocks.append(sparse.csr_matrix(tab[c14].astype(np.float32).reshape(n, -1)))
            fired = ((live if feat.context else urg) > 0) & (calm == 0)
            w = feat.urg_weight
            n_rules = len(feat.rule_cols)
            hd, hs, hc, hl = rule_hits
            # A calm phrase silences the urgency rules («газом не пахнет» must not count as
            # «пахнуть газ»); the calm columns themselves stay visible to the model.
            keep = (hc >= 0) & ((hs == _SLOT_CALM) | ((calm[hd] == 0) & hl))
            ur = [hd[keep]]
            uc = [hc[keep]]
            uv = [np.full(int(keep.sum()), w)]
            n_cues = len(feat.cue_names)
            cues = counts[:, _N_CAT + 2 : _N_CAT + 2 + n_cues]
            cue_tab = np.array([w * math.log1p(k) for k in range(int(cues.max(initial=0)) + 1)])
            cd, ck = np.nonzero(cues)
            ur.append(cd)
            uc.append(n_rules + ck)
            uv.append(cue_tab[cues[cd, ck]])
            rd = np.flatnonzero(fired)
            ur.append(rd)
            uc.append(np.full(len(rd), n_rules + n_cues))
            uv.append(np.full(len(rd), w))
            blocks.append(sparse.csr_matrix(
                (np.concatenate(uv).astype(np.float32),
                 (np.concatenate(ur).astype(np.int32), np.concatenate(uc).astype(np.int32))),
                shape=(n, feat.n_urg), dtype=np.float32))
            if feat.context:
                cr_, cc_, cv_ = ctx
                blocks.append(sparse.csr_matrix(
                    ((np.asarray(cv_, np.float64) * w).astype(np.float32),
                     (np.asarray(cr_, np.int32), np.asarray(cc_, np.int32))),
                    shape=(n, feat.n_ctx), dtype=np.float32))
        x = sparse.hstack(blocks, format="csr", dtype=np.float32)
        return x, rule, known.tolist()

    def _lexicon_hits(
        self, flat: list[int], lens: list[int], ids: np.ndarray, flags: np.ndarray,
        doc_of: np.ndarray, n: int,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray,
               tuple[list[int], list[int], list[float]]]:
        """Hit counts per (text, lexicon slot), the urgency/calm hits with rule columns and
        whether each is live, live urgency hits per text, and the context block (COO lists).

        One walk over the tokens whose lemma files some entry, each distinct lemma once: per
        lexicon the same hits as :meth:`Lexicon.matches` (their order may differ, which no
        feature depends on: counts, and rule columns summed into a canonical CSR matrix).
        Positions are computed only when a multi-word entry needs them. Texts with urgency hits
        then get the kind of each hit (:func:`.context.hit_kinds`) when context is on.
        """
        cand = np.flatnonzero(flags & 8)
        hd: list[int] = []
        hs: list[int] = []
        hc: list[int] = []
        urg_hits: dict[int, list[tuple[int, _Entry]]] = {}
        starts = np.concatenate(([0], np.cumsum(lens))).tolist()
        lem_of = self._lem
        if len(cand):
            hits_of = self._hits
            prev = -1
            seen: set[str] = set()
            lemmas: list[str] | None = None
            positions: dict[str, list[int]] | None = None
            for k, d in zip(cand.tolist(), doc_of[cand].tolist(), strict=True):
                if d != prev:
                    prev, seen, lemmas, positions = d, set(), None, None
                rid = flat[k]
                lem = lem_of[rid]
                if lem in seen:
                    continue
                seen.add(lem)
                for slot, col, entry, always, need in hits_of[rid]:
                    if not always:
                        if lemmas is None:
                            lemmas = [lem_of[r] for r in flat[starts[d] : starts[d + 1]]]
                            present = set(lemmas)
                        if not need <= present:
                            continue
                        if positions is None:
                            positions = _positions(lemmas)
                        if not entry_matches(entry, positions):
                            continue
                    if slot == _SLOT_URG:
                        urg_hits.setdefault(d, []).append((len(hd), entry))
                    hd.append(d)
                    hs.append(slot)
                    hc.append(col)
        d_arr = np.array(hd, dtype=np.int64)
        s_arr = np.array(hs, dtype=np.int64)
        counts = np.bincount(d_arr * _N_SLOTS + s_arr, minlength=n * _N_SLOTS).reshape(n, -1)
        live_hit = np.ones(len(hd), dtype=bool)
        live = counts[:, _SLOT_URG].copy()
        cr: list[int] = []
        cc: list[int] = []
        cv: list[float] = []
        if self.feat.context:
            cflags = self._cflags
            for d, hits in urg_hits.items():
                doc_ids = flat[starts[d] : starts[d + 1]]
                lemmas_d = [lem_of[r] for r in doc_ids]
                cf = cflags[doc_ids].tolist()
                kinds = hit_kinds([e for _, e in hits], lemmas_d, cf, _positions(lemmas_d))
                n_live = 0
                for (h, _), kind in zip(hits, kinds, strict=True):
                    if kind == HIT_KINDS[0]:
                        n_live += 1
                    else:
                        live_hit[h] = False
                live[d] = n_live
                for j, v in enumerate(context_row(kinds, cf)):
                    if v:
                        cr.append(d)
                        cc.append(j)
                        cv.append(v)
        sel = (s_arr == _SLOT_URG) | (s_arr == _SLOT_CALM)
        return counts, (d_arr[sel], s_arr[sel], np.array(hc, dtype=np.int64)[sel],
                        live_hit[sel]), live, (cr, cc, cv)


def _tfidf_block(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int,
                 idf: np.ndarray) -> sparse.csr_matrix:
    """Term counts per (row, column) as a canonical CSR matrix (rows, then columns ascending,
    duplicates summed — what ``sum_duplicates`` makes of the COO form), then sublinear tf × idf
    and l2-normalised rows: the arithmetic of ``Featurizer._block``, in the same order.

    One numpy sort of ``row * n_cols + col`` replaces scipy's per-row index sort.
    """
    key = rows.astype(np.int64) * n_cols + cols
    key.sort()
    if len(key):
        first = np.empty(len(key), dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=len(key)).astype(np.float32)
        uniq = key[starts]
    else:
        counts = np.zeros(0, np.float32)
        uniq = key
    r = uniq // n_cols
    indptr = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=n_rows), out=indptr[1:])
    m = sparse.csr_matrix(((counts, (uniq - r * n_cols).astype(np.int32), indptr)),
                          shape=(n_rows, n_cols))
    m.has_canonical_format = True
    return tfidf_inplace(m, idf)


def tfidf_inplace(m: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Canonical count matrix → sublinear tf × idf → l2-normalised rows, in place."""
    if m.nnz:
        n_rows = m.shape[0]
        m.data = (1.0 + np.log(m.data)) * idf[m.indices]
        lengths = np.diff(m.indptr)
        row_of = np.repeat(np.arange(n_rows), lengths)
        norms = np.sqrt(np.bincount(row_of, weights=m.data * m.data, minlength=n_rows))
        norms[norms == 0] = 1.0
        m.data /= norms[row_of].astype(np.float32)
    return m
