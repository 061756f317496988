"""Near-duplicate flagging: the same author, same address and very similar text within 24 h.

Citizens often resend an appeal (no answer yet, a second channel, a slightly edited text). Such
an appeal is still *registered* (it may carry new detail, and 59-FZ requires registering it),
but it is marked ``duplicate_of`` the earlier one, and the flag travels in the routed record so
the receiving authority sees it is a resend. The figures and ratings still count it as an
appeal of its own (a resend the body must answer too). Exact repeats (same channel + external
id) are handled elsewhere (Redis ``SET NX``).

Texts that hold other numbers are never near-duplicates (:func:`_numbers`): «Не работает
лифт в подъезде 1» and «... в подъезде 2» share nearly every shingle (0.92) and were flagged
as one resend, though they are two lifts; so were «залив квартиры 12» and «квартиры 45». The
price: a resend that adds a number («пишу третий раз, обращение от 14.01») is not flagged. A
missed flag registers an appeal as any other; a wrong one tells the body it may leave an
appeal unanswered (59-FZ art. 11 p. 5). Upgrade: entries written before it carry no numbers
and are compared on their text alone, as before, for one window; an older worker skips the
entries a newer one writes (missed flags while both run).

How similarity is measured: character 5-shingles of the normalised text (lower case, ``ё``→``е``,
punctuation dropped, whitespace folded) hashed to 64 bits; an appeal keeps a *bottom-k sketch*,
the ``k`` (default 128) smallest shingle hashes. Jaccard similarity of two texts is estimated
from their sketches (KMV estimator: of the ``k`` smallest hashes of the union, the share present
in both). For texts with at most ``k`` distinct shingles (about k characters) the sketch is the
whole set and the estimate is exact; for longer texts the error is about ``1/sqrt(k)``. Chosen
over MinHash because one pass over the shingles builds it (no per-permutation hashing in
Python), and over simhash because its threshold means "Jaccard >= 0.8", which people can reason
about.

Redis layout (values are derived data, rebuilt from Kafka if lost; losing them only means a
missed flag). Keys never contain personal data: the author identity and address are combined
into an HMAC-SHA256 bucket id with a secret salt, so a key cannot be reversed into a phone number
by enumerating the (small) space of Russian mobile numbers, as a plain hash could be:

* ``{prefix}nd2:{bucket}``: a hash ``appeal_id -> packed(ts, root appeal_id, numbers, sketch)``,
  with TTL = window + 1 h, refreshed on every write. One bucket per author identifier (E.164
  phone, e-mail, social handle together with its network: ``extra["network"]``), so an appeal
  matches an earlier one that shares *any* identifier.

  A bucket keeps at most ``bucket_max`` entries (``APPEALS_NEAR_DUP_BUCKET_MAX``, 32): after
  each write the entries with the earliest event times beyond that are dropped (ties: the
  smaller appeal id), by the same script. Why: one identity can send thousands of appeals a
  day from one address — an organisation, an operator's or a hotline's own number — and every
  lookup reads and compares the whole bucket (~10 µs per comparison here), so an uncapped
  bucket made intake quadratic in that identity's appeals: 5,000 appeals from one phone held
  the worker's event loop for up to 8 s at a time. A citizen's resend repeats one of their
  latest appeals, which the cap keeps; a resend of an appeal more than ``bucket_max`` appeals
  back is not flagged. Lookups compare against the same newest entries (also within a batch).

  Upgrade (session 12): bucket ids of social handles now include the network, and addresses
  are normalised differently (:func:`_norm_address`), so such appeals registered before the
  upgrade are not found by appeals after it, for one window (missed flags, nothing else).

A lookup is one round trip (``HGETALL`` of the appeal's buckets, in one Lua script), remembering
is one more (``HSET`` + ``EXPIRE``, likewise); entries older than the window are ignored on
lookup and go with their key's TTL (or :func:`prune`). The batched variants cost the same
two round trips for a whole batch and also compare appeals *within* the batch.

Which of two similar appeals is flagged: the one intake meets *later*, whatever their
``submitted_at``, because the one met first is registered and published by then and a flag
cannot be withdrawn. The window is measured on event times (``submitted_at``) in both
directions, so a resend written earlier but delivered later (an e-mail resend delivered before
the ПОС message it repeats, which waited in moderation) is flagged as well, pointing at the
appeal met first. Replays: an appeal met again (the same appeal id; a batch replayed after a
crash) gets the decision recorded for it the first time, as long as its entry is in Redis (up
to window + 1 h after its bucket's last write), so it flags exactly what the live run flagged.
Not guaranteed: once its entry has expired, was dropped by the bucket cap or Redis lost it,
the decision is made again from what Redis holds at that time, which can differ from the live
run (a rebuild that meets the appeals in another order, e.g. partitions interleaved
differently, flags the other one of a pair).

Configuration (environment): ``APPEALS_NEAR_DUP_SALT`` (secret for the bucket HMAC; set it in
production, the default only suits tests), ``APPEALS_NEAR_DUP_THRESHOLD`` (0.8),
``APPEALS_NEAR_DUP_WINDOW_S`` (86400), ``APPEALS_NEAR_DUP_SKETCH`` (128),
``APPEALS_NEAR_DUP_BUCKET_MAX`` (32).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import os
import re
import struct
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from schemas.validation import parse_datetime
from streams.settings import ConfigError
from workers.intake import redis_scripts

__all__ = [
    "NearDupConfig",
    "Signature",
    "find_near_duplicate",
    "find_near_duplicates",
    "jaccard",
    "remember",
    "remember_many",
    "signature",
    "signatures",
    "sketch",
    "sketches",
]

_DEFAULT_SALT = "citizen-appeals-near-dup-dev-salt"
_N = TypeVar("_N", int, float)


@dataclass(frozen=True, slots=True)
class NearDupConfig:
    salt: bytes = _DEFAULT_SALT.encode()
    threshold: float = 0.8
    window_s: float = 86_400.0
    sketch_size: int = 128
    shingle: int = 5
    key_prefix: str = ""
    #: Entries a bucket keeps: the ones with the latest event times (see the module docstring).
    bucket_max: int = 32

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NearDupConfig:
        """The configuration from ``APPEALS_NEAR_DUP_*``; a bad value raises
        :class:`~streams.settings.ConfigError` naming its variable (one line; ``appeals
        worker`` stops with status 2 before it contacts Kafka).

        Each value is range-checked: a percent-style threshold (80), ``nan``, a sketch of 0
        hashes or a window of 0 s switched flagging off for good, and a threshold of 0
        flagged every appeal of an author as a resend, all without a word.
        """
        env = os.environ if environ is None else environ
        return cls(
            salt=env.get("APPEALS_NEAR_DUP_SALT", _DEFAULT_SALT).encode(),
            threshold=_number(env, "APPEALS_NEAR_DUP_THRESHOLD", 0.8, float,
                              lambda v: 0 < v <= 1, "a number in (0, 1] (a Jaccard similarity)"),
            window_s=_number(env, "APPEALS_NEAR_DUP_WINDOW_S", 86_400.0, float,
                             lambda v: v > 0, "a number of seconds above 0"),
            sketch_size=_number(env, "APPEALS_NEAR_DUP_SKETCH", 128, int, lambda v: v >= 1,
                                "a whole number of at least 1"),
            key_prefix=env.get("APPEALS_TOPIC_PREFIX", ""),
            bucket_max=_number(env, "APPEALS_NEAR_DUP_BUCKET_MAX", 32, int, lambda v: v >= 1,
                               "a whole number of at least 1"),
        )


def _number(env: Mapping[str, str], name: str, default: _N, kind: Callable[[str], _N],
             ok: Callable[[_N], bool], expected: str) -> _N:
    """``env[name]`` read by ``kind`` (``default`` when unset) and checked by ``ok``."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    # ``nan`` passes no comparison but fails none written with ``not``; inf is no setting.
    if value is None or not math.isfinite(value) or not ok(value):
        raise ConfigError(f"{name} must be {expected}, got {raw!r}")
    return value


_default_config: NearDupConfig | None = None


def default_config() -> NearDupConfig:
    global _default_config
    if _default_config is None:
        _default_config = NearDupConfig.from_env()
    return _default_config


# --------------------------------------------------------------------------- text sketches

_NON_WORD = re.compile(r"[\W_]+")


def _canonical_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower().replace("ё", "е")
    return _NON_WORD.sub(" ", text).strip()


_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _shingle_hashes(canon: str, shingle: int) -> Any:
    """64-bit hashes of every ``shingle``-character window, computed for the whole text at once.

    A polynomial hash over the code points followed by the splitmix64 finaliser, in numpy: the
    same value in every process (unlike ``hash()``), and ~30x cheaper than a blake2b call per
    shingle, which made this the hottest function of the intake stage (issue #7 profile).
    """
    codes = np.frombuffer(canon.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = min(shingle, len(codes))
    count = len(codes) - width + 1
    h = np.zeros(count, dtype=np.uint64)
    for j in range(width):
        h = h * _PRIME + codes[j:j + count]  # wraps modulo 2**64, as intended
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def sketch(text: str, size: int = 128, shingle: int = 5) -> tuple[int, ...]:
    """Bottom-``size`` sketch: the smallest 64-bit hashes of the text's character shingles."""
    canon = _canonical_text(text)
    if not canon:
        return ()
    hashes = np.unique(_shingle_hashes(canon, shingle))  # sorted, distinct
    return tuple(hashes[:size].tolist())


#: Most code points hashed in one array by :func:`sketches` (~2 MB per uint64 array): a batch
#: of 500 letters at the 20,000-character limit would otherwise allocate ~80 MB per temporary.
SKETCH_CHUNK_CODEPOINTS = 1 << 18


def sketches(texts: Sequence[str], size: int = 128, shingle: int = 5,
             chunk: int = SKETCH_CHUNK_CODEPOINTS) -> list[tuple[int, ...]]:
    """:func:`sketch` of every text, with the same values, at ~60% of the cost for a batch.

    Why: per text, the hashing is ~20 numpy calls on a ~130-element array, so call overhead,
    not arithmetic, dominated (issue 7 profile: the intake's sketches were ~10% of the worker's
    CPU). Here consecutive texts, up to ``chunk`` code points together, are hashed as one array;
    windows that would cross from one text into the next are not read, and each text's distinct
    hashes are then taken from its own slice, so every sketch equals what :func:`sketch` gives
    for that text alone.
    """
    canons = [_canonical_text(text) for text in texts]
    out: list[tuple[int, ...]] = [()] * len(canons)
    first = 0
    while first < len(canons):
        last, total = first, 0
        while last < len(canons) and (last == first or total + len(canons[last]) <= chunk):
            total += len(canons[last])
            last += 1
        _sketch_run(canons, first, last, total, size, shingle, out)
        first = last
    return out


def _sketch_run(canons: list[str], first: int, last: int, total: int, size: int, shingle: int,
                out: list[tuple[int, ...]]) -> None:
    """Sketches of ``canons[first:last]`` (``total`` code points) hashed as one array."""
    # Under one shingle in all, no text of the run is as long as a shingle: nothing to join.
    hashes = _shingle_hashes("".join(canons[first:last]), shingle) if total >= shingle else None
    start = 0
    whole: list[int] = []  # texts with at least one whole shingle
    windows = []
    for i in range(first, last):
        length = len(canons[i])
        if length >= shingle:
            assert hashes is not None  # total >= length >= shingle
            whole.append(i)
            windows.append(hashes[start:start + length - shingle + 1])
        elif length:
            # Shorter than one shingle: hashed whole, as sketch() does.
            out[i] = tuple(np.unique(_shingle_hashes(canons[i], shingle))[:size].tolist())
        start += length
    if whole:
        _distinct_smallest(whole, windows, size, out)


def _distinct_smallest(indices: list[int], windows: list[Any], size: int,
                       out: list[tuple[int, ...]]) -> None:
    """``out[i] = tuple(np.unique(window)[:size])`` for each (i, window), with a few numpy calls
    for all the windows together instead of one ``np.unique`` (~10 calls) per text: each
    window is sorted in place within one joined array, a value equal to its predecessor in
    the same window is dropped, and each text takes the first ``size`` values left of its own
    window."""
    joined = np.concatenate(windows)
    lengths = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
    starts = np.zeros(len(windows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    for a, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        joined[a:a + n].sort()
    keep = np.empty(len(joined), dtype=bool)
    keep[0] = True
    np.not_equal(joined[1:], joined[:-1], out=keep[1:])
    keep[starts] = True  # a window's first value is never its predecessor's repeat
    kept = np.cumsum(keep)  # kept[j]: values kept in joined[:j + 1]
    # Distinct values before each window, and in it: the window's slice of the kept values.
    before = kept[starts] - 1
    counts = kept[starts + lengths - 1] - before
    values = joined[keep].tolist()
    for i, lo, n in zip(indices, before.tolist(), counts.tolist(), strict=True):
        out[i] = tuple(values[lo:lo + min(n, size)])


def jaccard(a: Sequence[int], b: Sequence[int], size: int = 128) -> float:
    """Jaccard estimate from two bottom-k sketches (exact when both are whole shingle sets)."""
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    if len(a) < size and len(b) < size:
        return len(sa & sb) / len(sa | sb)
    union_k = sorted(sa | sb)[:size]
    both = sum(1 for h in union_k if h in sa and h in sb)
    return both / len(union_k)


# --------------------------------------------------------------------------- appeal access

# Address words -> one spelling each (``None``: dropped). Matched on whole tokens that keep
# their inner hyphens, *before* punctuation is dropped: «пр-т», «пр-кт» and «проспект» are one
# word, «б-р» and «бульвар» another (with the hyphen turned into a space first, «пр-т» became
# «пр т» and matched neither). The street type «улица» is dropped: it is what an address
# without a type means («Ленина, 5» is «ул. Ленина, 5»), while every other type stays, so
# «пр-кт Ленина 5» never equals «ул. Ленина 5».
_ADDR_WORDS: dict[str, str | None] = {
    "улица": None, "ул": None,
    "проспект": "пр-кт", "пр": "пр-кт", "пр-т": "пр-кт", "пр-кт": "пр-кт", "просп": "пр-кт",
    "пркт": "пр-кт",
    "переулок": "пер", "квартира": "кв", "корпус": "к", "корп": "к", "строение": "стр",
    "бульвар": "б-р", "б-р": "б-р", "бул": "б-р", "шоссе": "ш", "площадь": "пл",
    "поселок": "п", "пос": "п", "село": "с", "район": "р-н", "р-н": "р-н",
    "микрорайон": "мкр", "мкрн": "мкр", "мкр-н": "мкр", "набережная": "наб",
    "проезд": "пр-д", "пр-д": "пр-д",
}
# «г.»/«город» before a place name and «д.»/«дом» before a house number are noise: «г. Барнаул,
# ул. Ленина, д. 5» is «Барнаул, Ленина 5», and «…, д. 5, г. Бийск» (the city last, as on an
# envelope) is «…, 5, Бийск». Elsewhere they are kept, as «г» and «д» whichever way they were
# spelt: a lone «г» after a house number and before nothing or another address word is a
# building letter («д. 5 г» is house 5Г, not house 5), and «д. Ивановка» is a village
# (деревня).
_CITY_WORDS = frozenset({"г", "город"})
_HOUSE_WORDS = frozenset({"д", "дом"})
_ADDR_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def _norm_address(address: str | None) -> str:
    """One spelling for the spelling variants of one address (see :data:`_ADDR_WORDS`)."""
    if not address:
        return ""
    text = unicodedata.normalize("NFC", address).lower().replace("ё", "е")
    tokens = _ADDR_TOKEN.findall(text)
    words: list[str] = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _CITY_WORDS:
            if not (nxt[:1].isalpha() and nxt not in _ADDR_WORDS
                    and nxt not in _CITY_WORDS | _HOUSE_WORDS):
                words.append("г")
            continue
        if tok in _HOUSE_WORDS:
            if not nxt[:1].isdigit():
                words.append("д")
            continue
        if tok in _ADDR_WORDS:
            mapped = _ADDR_WORDS[tok]
            if mapped is not None:
                words.append(mapped)
            continue
        words.extend(tok.split("-"))  # «Ростов-на-Дону» as before: hyphens were spaces
    return " ".join(words)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _network(appeal: Any) -> str:
    """The social network a handle belongs to (``extra["network"]``, set by the incident
    adapter), lower-cased; ``""`` when the appeal does not say."""
    extra = _get(appeal, "extra")
    value = extra.get("network") if isinstance(extra, Mapping) else None
    return value.strip().lower() if isinstance(value, str) else ""


def _identities(appeal: Any) -> list[str]:
    """Author identifiers, strongest first; a name alone is not an identity (namesakes).

    A social handle names a person only within its network: @ivanov on VK and @ivanov on
    Telegram are two people, so the network is part of the identity. Handles of appeals that
    name no network are compared only with each other.
    """
    author = _get(appeal, "author")
    if author is None:
        return []
    out = []
    for kind in ("phone", "email", "handle"):
        value = _get(author, kind)
        if isinstance(value, str) and value.strip():
            v = value.strip().lower()
            if kind == "handle":
                v = f"{_network(appeal)}\x1f{v.lstrip('@')}"
            out.append(f"{kind}:{v}")
    return out


def _event_ts(appeal: Any) -> float:
    for name in ("submitted_at", "registered_at"):
        value = _get(appeal, name)
        if isinstance(value, str):
            try:
                dt = parse_datetime(value)
            except ValueError:
                continue
            if dt.tzinfo is None:
                continue
            return dt.timestamp()
    return 0.0


@dataclass(frozen=True, slots=True)
class Signature:
    """What near-duplicate detection needs of one appeal (no raw personal data inside)."""

    appeal_id: str
    buckets: tuple[str, ...]
    ts: float
    sketch: tuple[int, ...]
    root: str
    """The appeal this one duplicates (its ``duplicate_of``), or its own id."""
    numbers: int = 0
    """A digest of the numbers in the text (:func:`_numbers`): appeals that differ in them
    are never near-duplicates."""


#: A bucket's entry: appeal id, event time, root, sketch, numbers digest (``None``: an entry
#: written before numbers were recorded, compared on its text alone).
_Entry = tuple[str, float, str, tuple[int, ...], int | None]

_NUMBER = re.compile(r"\d+")


def _numbers(text: str) -> int:
    """A 64-bit digest of the numbers of a text: its digit runs, leading zeros dropped,
    distinct and sorted.

    Two short appeals that differ only in a number («лифт в подъезде 1» and «... 2»,
    «залив квартиры 12» and «... 45») share nearly every shingle (Jaccard 0.92) but are two
    problems, and were flagged as resends. The digit runs of a text are those of its
    canonical form (NFC, case and punctuation leave them as they are).
    """
    found = ",".join(sorted({n.lstrip("0") or "0" for n in _NUMBER.findall(text)}))
    return int.from_bytes(hashlib.blake2b(found.encode(), digest_size=8).digest(), "big")


def _buckets(appeal: Any, cfg: NearDupConfig) -> tuple[str, ...]:
    address = _norm_address(_get(appeal, "address"))
    return tuple(
        hmac.new(cfg.salt, f"{ident}\x1f{address}".encode(), hashlib.sha256).hexdigest()[:32]
        for ident in _identities(appeal)
    )


def _signature(appeal: Any, buckets: tuple[str, ...], text_sketch: tuple[int, ...]) -> Signature:
    appeal_id = str(_get(appeal, "appeal_id"))
    return Signature(
        appeal_id=appeal_id,
        buckets=buckets,
        ts=_event_ts(appeal),
        sketch=text_sketch,
        root=str(_get(appeal, "duplicate_of") or appeal_id),
        # Like the sketch: only for an appeal with an author identity to compare under.
        numbers=_numbers(str(_get(appeal, "text") or "")) if buckets else 0,
    )


def signature(appeal: Any, config: NearDupConfig | None = None) -> Signature:
    cfg = config or default_config()
    buckets = _buckets(appeal, cfg)
    # No author identity, no bucket to compare in: skip the sketch (anonymous appeals).
    text_sketch = (sketch(str(_get(appeal, "text") or ""), cfg.sketch_size, cfg.shingle)
                   if buckets else ())
    return _signature(appeal, buckets, text_sketch)


def signatures(appeals: Sequence[Any], config: NearDupConfig | None = None) -> list[Signature]:
    """:func:`signature` of every appeal of a batch, the sketches computed together."""
    cfg = config or default_config()
    buckets = [_buckets(a, cfg) for a in appeals]
    with_identity = [i for i, b in enumerate(buckets) if b]
    texts = [str(_get(appeals[i], "text") or "") for i in with_identity]
    text_sketches: list[tuple[int, ...]] = [()] * len(appeals)
    for i, sk in zip(with_identity, sketches(texts, cfg.sketch_size, cfg.shingle), strict=True):
        text_sketches[i] = sk
    return [_signature(a, b, sk) for a, b, sk in zip(appeals, buckets, text_sketches,
                                                       strict=True)]


_batch_signatures = signatures  # the batch functions below take a ``signatures`` argument


_HEAD = struct.Struct(">dH")
#: Set in the root length of an entry whose numbers digest follows its root. An entry of an
#: older worker has no digest (and is compared on its text alone); an older worker takes the
#: flag for a root length past the end of the entry, reads the digest and sketch as the root
#: and skips the entry when they are not UTF-8 (practically always), else finds no sketch in
#: it: no flag either way.
_HAS_NUMBERS = 0x8000
_DIGEST = struct.Struct(">Q")


def _pack(sig: Signature) -> bytes:
    root = sig.root.encode()
    return (_HEAD.pack(sig.ts, len(root) | _HAS_NUMBERS) + root + _DIGEST.pack(sig.numbers)
            + struct.pack(f">{len(sig.sketch)}Q", *sig.sketch))


def _unpack(raw: bytes) -> tuple[float, str, tuple[int, ...], int | None] | None:
    try:
        ts, n = _HEAD.unpack_from(raw, 0)
        at = _HEAD.size + (n & ~_HAS_NUMBERS)
        root = raw[_HEAD.size:at].decode()
        numbers = None
        if n & _HAS_NUMBERS:
            (numbers,) = _DIGEST.unpack_from(raw, at)
            at += _DIGEST.size
        body = raw[at:]
        count = len(body) // 8
        return ts, root, struct.unpack(f">{count}Q", body[:count * 8]), numbers
    except (struct.error, UnicodeDecodeError):
        return None


def _key(cfg: NearDupConfig, bucket: str) -> str:
    # "nd2": sketches of the numpy shingle hash; "nd" entries (blake2b) are not comparable
    # with them and expire on their own within the window.
    return f"{cfg.key_prefix}nd2:{bucket}"


# --------------------------------------------------------------------------- matching

def _best_match(
    sig: Signature,
    candidates: Iterable[_Entry],
    cfg: NearDupConfig,
) -> str | None:
    """The root of the earliest-written appeal met before this one, written within the window
    either side of it, whose text is similar enough; or ``None``.

    When this appeal was met before (a replay: its own entry is among the candidates), the
    decision recorded then: its stored root, ``None`` if that is itself.
    """
    best: tuple[float, str] | None = None
    for appeal_id, ts, root, sk, numbers in candidates:
        if appeal_id == sig.appeal_id:
            return root if root != sig.appeal_id else None
        if root == sig.appeal_id:
            continue  # one that already points at this appeal
        if abs(ts - sig.ts) > cfg.window_s:
            continue
        if numbers is not None and numbers != sig.numbers:
            continue  # other numbers: another entrance, flat, house (see _numbers)
        if jaccard(sig.sketch, sk, cfg.sketch_size) >= cfg.threshold and (
            best is None or (ts, root) < best
        ):
            best = (ts, root)
    return best[1] if best else None


def _decode_bucket(raw: Mapping[Any, Any]) -> list[_Entry]:
    out = []
    for field_name, value in raw.items():
        parsed = _unpack(value if isinstance(value, bytes) else str(value).encode("latin-1"))
        if parsed is None:
            continue
        name = field_name.decode() if isinstance(field_name, bytes) else str(field_name)
        out.append((name, *parsed))
    return out


async def find_near_duplicates(
    redis: Any, appeals: Sequence[Any], *, window_s: float | None = None,
    config: NearDupConfig | None = None, signatures: Sequence[Signature] | None = None,
) -> list[str | None]:
    """For each appeal, the appeal_id (a root) of the one met before it that it near-duplicates,
    or ``None``; for an appeal met before, the decision recorded then. One round trip.

    Appeals earlier in ``appeals`` count as earlier candidates for later ones (a batch that
    holds an appeal and its resend flags the resend). Nothing is written: call
    :func:`remember_many` afterwards with the flags applied.
    """
    cfg = config or default_config()
    if window_s is not None:
        cfg = dataclasses.replace(cfg, window_s=window_s)
    sigs = list(signatures) if signatures is not None else _batch_signatures(appeals, cfg)
    buckets = sorted({b for s in sigs for b in s.buckets})
    stored: dict[str, list[_Entry]] = {}
    if buckets:
        results = await redis_scripts.run(redis, redis_scripts.HGETALL_MANY,
                                          [_key(cfg, b) for b in buckets])
        stored = {b: _newest(_decode_bucket(redis_scripts.pairs_to_dict(r or [])),
                             cfg.bucket_max)
                  for b, r in zip(buckets, results, strict=True)}
    out: list[str | None] = []
    for sig in sigs:
        cands = [c for b in sig.buckets for c in stored.get(b, ())]
        match = _best_match(sig, cands, cfg)
        out.append(match)
        entry: _Entry = (sig.appeal_id, sig.ts, match or sig.root, sig.sketch, sig.numbers)
        for b in sig.buckets:  # visible to later appeals of the same batch
            held = stored.setdefault(b, [])
            # As HSET does: a replayed appeal's entry replaces its own, it is not a second one
            # (which would push a real entry out of the cap).
            held[:] = [e for e in held if e[0] != sig.appeal_id]
            held.append(entry)
            if len(held) > cfg.bucket_max:  # what Redis keeps of the bucket after the write
                held.remove(min(held, key=_age_order))
    return out


def _age_order(entry: _Entry) -> tuple[float, str]:
    """Oldest first: event time, then appeal id (the order the Redis trim uses)."""
    return entry[1], entry[0]


def _newest(entries: list[_Entry], keep: int) -> list[_Entry]:
    """The ``keep`` entries with the latest event times (a bucket written before the cap
    existed can hold more until its next write trims it)."""
    if len(entries) <= keep:
        return entries
    return sorted(entries, key=_age_order)[-keep:]


async def find_near_duplicate(
    redis: Any, appeal: Any, window_s: float = 86_400, *, config: NearDupConfig | None = None
) -> str | None:
    """The earlier appeal_id this appeal near-duplicates, or ``None`` (one round trip)."""
    return (await find_near_duplicates(redis, [appeal], window_s=window_s, config=config))[0]


async def remember_many(
    redis: Any, appeals: Sequence[Any], *, config: NearDupConfig | None = None,
    signatures: Sequence[Signature] | None = None,
) -> int:
    """Record appeals as candidates for later ones; one round trip for the whole batch.
    Returns how many older entries the written buckets dropped to stay within
    ``bucket_max``.

    An appeal with ``duplicate_of`` set is stored under its root, so a third resend points at
    the original, not at the second. Each written key's TTL is reset to window + 1 h.
    """
    cfg = config or default_config()
    if signatures is not None:
        # Computed before the flags were set: only the root can have changed since.
        sigs = [dataclasses.replace(sig, root=str(_get(a, "duplicate_of") or sig.appeal_id))
                for sig, a in zip(signatures, appeals, strict=True)]
    else:
        sigs = _batch_signatures(appeals, cfg)
    ttl = int(cfg.window_s + 3600)
    if not any(s.buckets for s in sigs):
        return 0
    keys: list[str] = []
    args: list[Any] = [ttl, cfg.bucket_max]
    for sig in sigs:
        packed = _pack(sig)
        for b in sig.buckets:
            keys.append(_key(cfg, b))
            args.extend((sig.appeal_id, packed))
    return int(await redis_scripts.run(redis, redis_scripts.HSET_CAPPED_MANY, keys, args))


async def remember(
    redis: Any, appeal: Any, *, config: NearDupConfig | None = None
) -> None:
    """Record one appeal (see :func:`remember_many`)."""
    await remember_many(redis, [appeal], config=config)


async def prune(redis: Any, appeal: Any, *, config: NearDupConfig | None = None) -> int:
    """Drop entries older than the window from this appeal's buckets; returns how many.

    Buckets are small (one author at one address) and expire a window after their last write,
    so pruning is an optional housekeeping step, not needed for correctness.
    """
    cfg = config or default_config()
    sig = signature(appeal, cfg)
    removed = 0
    for b in sig.buckets:
        entries = _decode_bucket(await redis.hgetall(_key(cfg, b)) or {})
        stale = [e[0] for e in entries if e[1] < sig.ts - cfg.window_s]
        if stale:
            removed += int(await redis.hdel(_key(cfg, b), *stale))
    return removed
