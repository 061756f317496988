"""Normalisation of canonical intake dicts, registered with :mod:`workers.intake.core` on import.

Why normalise at intake: every later stage (classifier, near-duplicate detection, exact dedupe,
search in the read model) compares text and people. Two appeals that differ only in Unicode
composition, a zero-width space, a non-breaking space or the way a phone was typed must look the
same to them, and a control character must never reach a log viewer or an authority's system.

What it does, on the canonical dict (after schema validation, before the record is built):

* every text field: Unicode NFC (in a text that is not NFC yet, a run of more than 30
  combining marks is cut to 30 first: :data:`MAX_COMBINING_RUN`); control and invisible
  format characters removed (``Cc`` except newline and tab, ``Cf`` such as zero-width spaces,
  soft hyphens and bidi overrides, lone surrogates), except the joiners, variation selectors
  and tags of emoji sequences (👨‍👩‍👧, 🏳️‍🌈, 1️⃣: :func:`_drop`); exotic spaces become a
  plain space; whitespace folded. Single-line fields
  (subject, address, names, ...) fold all whitespace to one space; the appeal ``text`` keeps its
  line breaks (paragraphs carry meaning) but folds runs of spaces and of blank lines. The
  ``external_id`` is trimmed at both ends and each whitespace character inside becomes a
  space, but runs are *not* folded (:func:`clean_id`): it names the appeal, and ``ID  1001``
  and ``ID 1001`` are two of them. Upgrade: an id with a run of whitespace inside named the
  folded id's appeal before session 12 and names another appeal id now, so a retry or replay
  across the upgrade of a message registered before it registers a second appeal (so does
  one whose external id holds an emoji sequence, whose emoji joiners are kept now);
* ``author.phone`` to E.164 (``phonenumbers``, default region RU, so ``8 913 ...`` works).
  An unparsable number is kept in ``author.phone`` as its digits (with a leading ``+`` when one
  was typed), and ``extra["phone_not_e164"] = true`` is set. It stays inside ``author`` on
  purpose: ``author`` is the one place the system treats as personal data, whereas ``extra`` is
  passed around freely, so moving the raw number there would leak it;
* ``author.email`` lower-cased (and a ``Name <addr>`` form reduced to the address, or to
  nothing when it holds no address with an ``@``);
* attachments: at most ``max_attachments`` items and ``max_attachment_bytes`` each (metadata only;
  the content stays outside Kafka behind its URL), and only ``http(s)`` URLs: an inline
  ``data:`` URL would smuggle binary content into Kafka. Violations raise
  :class:`InvalidEvent` with ``too_many_attachments``, ``attachment_too_large`` or
  ``attachment_not_url``.

The function is idempotent (normalising twice gives the same dict), which matters because the
gateway and the producer SDK normalise before publishing and the intake agent normalises again.

Configuration (environment, read at import; :func:`configure` overrides it in code):

* ``APPEALS_MAX_ATTACHMENTS`` (default 10): most attachments per appeal;
* ``APPEALS_MAX_ATTACHMENT_BYTES`` (default 20 MiB): largest declared attachment size;
* ``APPEALS_PHONE_REGION`` (default ``RU``): region assumed for numbers without a country code.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import phonenumbers

from schemas.validation import InvalidEvent
from streams.settings import ConfigError
from workers.intake.adapters._common import whole_bytes
from workers.intake.core import register_normaliser
from workers.intake.mailbox import UnreadableMailbox, split_mailbox

__all__ = [
    "NormaliseConfig",
    "clean_id",
    "clean_line",
    "clean_text",
    "configure",
    "normalise",
    "normalise_email",
    "normalise_phone",
]


@dataclass(frozen=True, slots=True)
class NormaliseConfig:
    max_attachments: int = 10
    max_attachment_bytes: int = 20 * 1024 * 1024
    phone_region: str = "RU"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NormaliseConfig:
        """The limits from the environment; a bad value raises
        :class:`~streams.settings.ConfigError` naming its variable (read on import, so
        ``appeals worker`` and ``appeals gateway`` stop with one line and status 2).

        ``APPEALS_PHONE_REGION`` must be a region ``phonenumbers`` knows: ``RUS`` passed, and
        every national number (``8 913 ...``) then failed to parse and was kept as digits.
        """
        env = os.environ if environ is None else environ
        cfg = cls()
        if env.get("APPEALS_MAX_ATTACHMENTS"):
            cfg = replace(cfg, max_attachments=_count(env, "APPEALS_MAX_ATTACHMENTS"))
        if env.get("APPEALS_MAX_ATTACHMENT_BYTES"):
            cfg = replace(cfg, max_attachment_bytes=_count(env, "APPEALS_MAX_ATTACHMENT_BYTES"))
        if env.get("APPEALS_PHONE_REGION"):
            region = env["APPEALS_PHONE_REGION"].strip().upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ConfigError(
                    f"APPEALS_PHONE_REGION must be a two-letter region phonenumbers knows "
                    f"(RU, KZ, BY, ...), got {env['APPEALS_PHONE_REGION']!r}")
            cfg = replace(cfg, phone_region=region)
        return cfg


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env[name]
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name} must be a whole number of at least 0, got {raw!r}")
    return value


_config = NormaliseConfig.from_env()


def configure(**changes: Any) -> NormaliseConfig:
    """Change the limits in-process (tests, or a worker applying its Settings); returns them."""
    global _config
    _config = replace(_config, **changes)
    return _config


def current_config() -> NormaliseConfig:
    return _config


# Characters removed outright: every control (Cc) except \t \n and the line breaks handled
# below, every format character (Cf: zero-width space/joiners, LRM/RLM, bidi embeddings and
# isolates, soft hyphen, BOM, tag characters, ...), lone surrogates (Cs), and a few invisible
# fillers that Unicode files elsewhere. The class is built from the Unicode database of the
# running Python, so no format character is missed by a hand-kept list.
def _drop_class() -> str:
    keep = {"\t", "\n", "\r", "\x0b", "\x0c", "\x85"}
    ranges: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if ch in keep:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs") or cp in _FILLERS:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    parts = [re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
             for a, b in ranges]
    return "[" + "".join(parts) + "]"


_FILLERS = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F,
                      0x3164, 0xFFA0, *range(0xFE00, 0xFE10)})
_DROP = re.compile(_drop_class())
# Spaces that are not U+0020 (NBSP, en/em spaces, narrow NBSP, ideographic space, ...).
_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_LINE_BREAKS = re.compile("\r\n?|[\u0085\u2028\u2029\x0b\x0c]")
_HSPACE = re.compile("[ \t]+")
_BLANK_LINES = re.compile("\n{3,}")
_ANY_SPACE = re.compile(r"\s+")


# --- Emoji sequences. Three kinds of character that _DROP removes are part of emoji: the zero
# width joiner U+200D (👨‍👩‍👧 is one family, 🧑‍🦽 one person in a wheelchair), the variation
# selectors U+FE0E/U+FE0F (text or emoji presentation: ❤️, and the 1️⃣ keycap) and the tag
# characters U+E0020-E007F (🏴 + tags + U+E007F is the flag of Scotland). Removed, a family
# became three people and the rainbow flag a white flag and a rainbow. They are kept where
# they join emoji, and removed elsewhere (a joiner inside a Cyrillic word dodges filters).
#: One joiner or selector, or a run of tag characters (judged as a whole), where it can be
#: part of an emoji sequence: after a character of the blocks that hold emoji (or after a
#: selector), or a selector between a keycap base and U+20E3. The ranges are a cheap first
#: cut (a joiner after a letter is never kept, and a text full of them must not cost a
#: Python call each); :func:`_emoji_format_kept` decides.
_EMOJI_FORMAT = re.compile(
    "(?<=[\u00a9\u00ae\u2000-\u32ff\ufe0e\ufe0f\U0001f000-\U0001faff])"
    "(?:[\u200d\ufe0e\ufe0f]|[\U000e0020-\U000e007f]+)"
    "|(?<=[0-9#*])[\ufe0e\ufe0f](?=\u20e3)")
_VARIATION = frozenset("\ufe0e\ufe0f")
_ZWJ = "\u200d"
_CANCEL_TAG = "\U000e007f"
#: Emoji that Unicode does not file as symbols (So), e.g. ‼ ℹ ↔ 〰; and the skin tones (Sk).
_EMOJI_NOT_SO = frozenset(chr(cp) for cp in (
    0x203C, 0x2049, 0x2139, 0x2194, 0x25FB, 0x25FC, 0x25FD, 0x25FE, 0x2934, 0x2935, 0x3030,
    0x303D, *range(0x1F3FB, 0x1F400)))
_KEYCAP_BASE = frozenset("0123456789#*")
#: The longest run of tags kept (a subdivision flag has at most 7 tags and the cancel tag).
_MAX_TAGS = 32


def _is_emoji(ch: str) -> bool:
    """An emoji, or near enough: every symbol (So) and :data:`_EMOJI_NOT_SO`; not ""."""
    return bool(ch) and (ch in _EMOJI_NOT_SO or unicodedata.category(ch) == "So")


def _emoji_format_kept(text: str, start: int, end: int) -> bool:
    """Is ``text[start:end]`` (a joiner, a variation selector or a run of tags) part of an
    emoji sequence?"""
    ch = text[start]
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if ch in _VARIATION:  # after an emoji, or after a keycap base and before U+20E3
        return _is_emoji(before) or (before in _KEYCAP_BASE and after == "\u20e3")
    if ch == _ZWJ:  # between two emoji; the first may carry a selector (🏳️‍🌈)
        j = start - 1 if before not in _VARIATION else start - 2
        return j >= 0 and _is_emoji(text[j]) and _is_emoji(after)
    # Tags: right after an emoji, ended by the cancel tag and holding no other one.
    return (end - start <= _MAX_TAGS and _is_emoji(before) and text[end - 1] == _CANCEL_TAG
            and text.find(_CANCEL_TAG, start, end - 1) == -1)


def _drop(value: str) -> str:
    """``value`` without what :data:`_DROP` matches, except the joiners, selectors and tags
    of emoji sequences (see :func:`_emoji_format_kept`), judged in the text as it was."""
    kept = [match.span() for match in _EMOJI_FORMAT.finditer(value)
            if _emoji_format_kept(value, *match.span())]
    if not kept:
        return _DROP.sub("", value)
    parts: list[str] = []
    last = 0
    for start, end in kept:
        parts.append(_DROP.sub("", value[last:start]))
        parts.append(value[start:end])
        last = end
    parts.append(_DROP.sub("", value[last:]))
    return "".join(parts)


# The fillers as a pattern of their own: the one kind of character :data:`_DROP` removes that
# ``str.isprintable()`` can let through (see :func:`_plain`).
_FILLER = re.compile("[" + "".join(re.escape(chr(cp)) for cp in sorted(_FILLERS)) + "]")


def _plain(value: str) -> bool:
    """Is there nothing in ``value`` for the patterns above to change?

    ``str.isprintable()`` is False for every character of Unicode's "Other" (Cc, Cf, Cs, Co,
    Cn) and "Separator" (Zs, Zl, Zp) categories except the ASCII space, so a printable string
    holds no control, format or surrogate character (:data:`_DROP` minus the fillers), no line
    break (:data:`_LINE_BREAKS`), no exotic space (:data:`_SPACES`), and no whitespace but
    U+0020. The fillers are letters and marks, hence printable: searched for apart. Most
    fields of most appeals are like that (already normalised by the gateway or the SDK), and
    the checks run in C, faster than the substitutions that would find nothing.
    """
    return value.isprintable() and (value.isascii() or _FILLER.search(value) is None)


#: Most combining marks (canonical combining class above 0) kept in a row of a text that
#: needs NFC; the rest of a longer run is dropped. CPython's NFC puts a run in canonical
#: order by insertion sort, quadratic in its length: 160,000 marks of alternating classes
#: held the event loop for 27 s, and the text was refused as too long only afterwards. 30 is
#: the bound of Unicode's Stream-Safe Text Format (UAX #15, section 13), which no real text
#: reaches (Russian needs one mark: й, ё, a stress; Vietnamese or pointed Hebrew a few); only
#: "Zalgo" text does.
MAX_COMBINING_RUN = 30


def _char_class(cps: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                         for a, b in ranges) + "]"


def _run_pattern(marks: str) -> re.Pattern[str]:
    """``marks`` (a class) more than :data:`MAX_COMBINING_RUN` times; group 1 is the part kept."""
    return re.compile(f"({marks}{{{MAX_COMBINING_RUN}}}){marks}+")


_MARKS = [cp for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))]
# Two patterns for speed: the re module tests a class of BMP characters with a bitmap, but a
# class that also holds astral ranges range by range (~10x slower on every character). Texts
# without astral characters (nearly all) use the first.
_BMP_MARK_RUN = _run_pattern(_char_class([cp for cp in _MARKS if cp <= 0xFFFF]))
_MARK_RUN = _run_pattern(_char_class(_MARKS))
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _cut_mark_runs(value: str) -> str:
    pattern = _MARK_RUN if _ASTRAL.search(value) else _BMP_MARK_RUN
    return pattern.sub(r"\1", value)


def _nfc(value: str) -> str:
    """NFC of ``value``; when it is not NFC yet, every run of combining marks is cut to
    :data:`MAX_COMBINING_RUN` first.

    NFC is quadratic only in the sorting of a run out of canonical order, and such a text is
    never NFC; a text that is NFC (nearly every one, checked quickly) is left as it is. The
    runs are cut again after NFC: decomposing a precomposed letter (``ё`` is ``е`` and
    U+0308) can add a mark to a run, and cutting the end of a run in canonical order leaves
    the text NFC, so a second pass changes nothing.
    """
    if unicodedata.is_normalized("NFC", value):
        return value
    value = unicodedata.normalize("NFC", _cut_mark_runs(value))
    value = _cut_mark_runs(value)
    return _drop(value)  # composition never creates them; kept for safety


def _base(value: str) -> str:
    if _plain(value):
        # The substitutions below would find nothing: only the NFC step remains (an ASCII
        # string is NFC).
        return value if value.isascii() else _nfc(value)
    if not value.isascii():
        value = _LINE_BREAKS.sub("\n", value)
        value = _drop(value)
        value = _SPACES.sub(" ", value)
        value = _nfc(value)
    else:
        value = _LINE_BREAKS.sub("\n", value)
        value = _drop(value)
    return value


def clean_line(value: str) -> str:
    """A single-line field: NFC, no controls, all whitespace folded to one space, trimmed."""
    value = _base(value)
    if "  " not in value and value.isprintable():
        # Its only whitespace is single U+0020 spaces (see _plain): nothing to fold.
        return value.strip()
    return _ANY_SPACE.sub(" ", value).strip()


_ONE_SPACE = re.compile(r"\s")


def clean_id(value: str) -> str:
    """An identifier (``external_id``): like :func:`clean_line`, but whitespace is not folded.

    Each whitespace character inside becomes one space and the ends are trimmed, but a run of
    spaces stays a run: ``"ID  1001"`` and ``"ID 1001"`` are two ids of the source, and
    folding them made two appeals one appeal id, the second dropped as a duplicate. An id
    :func:`clean_line` leaves unchanged is left unchanged here too, so its appeal id is the
    same as before.
    """
    value = _base(value)
    if value.isprintable():
        # Its only whitespace is U+0020 (see _plain): nothing to turn into a space.
        return value.strip()
    return _ONE_SPACE.sub(" ", value).strip()


def clean_text(value: str) -> str:
    """Free text: like :func:`clean_line` but paragraphs (line breaks) are kept."""
    value = _base(value)
    if "  " not in value and value.isprintable():
        # One line, whose only whitespace is single U+0020 spaces (see _plain): nothing to
        # fold, no blank lines.
        return value.strip()
    lines = [_HSPACE.sub(" ", line).strip() for line in value.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


#: A Russian/Kazakh number already in E.164 form: phonenumbers returns it unchanged (every
#: ``+7`` number of 10 national digits is "possible"; tests/intake compares the two over every
#: three-digit prefix), and skipping its parser saves ~40 µs per appeal on a slow host.
_E164_PLUS7 = re.compile(r"\+7[0-9]{10}")


def normalise_phone(raw: str, region: str | None = None) -> tuple[str | None, bool]:
    """``(value, is_e164)``: E.164 when the number parses as possible, else its digits.

    Not idempotent on its own: the digits of a number that did not parse can parse
    (``8(3852)+266999`` gives ``83852266999``), and the digits of two numbers can make one
    that does (``2-13-45, 2-18-90``). :func:`normalise` keeps a number a previous pass
    flagged (``phone_not_e164``) as its digits, so a record is normalised once whichever
    route it came by (gateway, then the intake agent).
    """
    text = clean_line(raw)
    if not text:
        return None, True
    if _E164_PLUS7.fullmatch(text):
        return text, True
    try:
        number = phonenumbers.parse(text, region or _config.phone_region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True
    except phonenumbers.NumberParseException:
        pass
    digits = _digits(text)
    return (digits or None), False


def _digits(text: str) -> str:
    """A number's ASCII digits, with the leading ``+`` when one was typed; idempotent."""
    digits = "".join(ch for ch in text if ch.isdigit() and ch.isascii())
    return ("+" + digits if digits and text.startswith("+") else digits)


def normalise_email(raw: str) -> str | None:
    """The address of an e-mail field, lower-cased; ``None`` when a ``Name <addr>`` form
    holds no address with an ``@`` (:func:`workers.intake.mailbox.split_mailbox`: the
    name's first word was taken for the address, ``Петров, Иван <ivan@x.ru>`` gave
    ``петров``)."""
    text = clean_line(raw)
    if "<" in text and ">" in text:
        try:
            _name, addr = split_mailbox(text)
        except UnreadableMailbox:
            addr = None
        if addr is None:
            return None
        text = addr
    text = text.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:"):]
    return text or None


_LINE_FIELDS = ("subject", "category_hint", "subcategory", "municipality", "address",
                "complaint_about", "external_id", "idempotency_key")


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """The normalised copy of a canonical intake dict (see the module docstring)."""
    out = dict(data)
    text = out.get("text")
    if isinstance(text, str):
        out["text"] = clean_text(text)
    for key in _LINE_FIELDS:
        value = out.get(key)
        if isinstance(value, str):
            cleaned = clean_id(value) if key == "external_id" else clean_line(value)
            # Ids must stay non-empty (they name the appeal); other empty fields become null.
            out[key] = cleaned if cleaned or key in ("external_id",) else None
    if out.get("external_id") == "":
        raise InvalidEvent("missing_field", "external_id is empty after normalisation")
    author = out.get("author")
    if isinstance(author, dict):
        out["author"] = _normalise_author(author, out)
    attachments = out.get("attachments")
    if isinstance(attachments, list):
        out["attachments"] = _check_attachments(attachments)
    return out


def _normalise_author(author: dict[str, Any], out: dict[str, Any]) -> dict[str, Any] | None:
    person = dict(author)
    for key in ("name", "handle"):
        value = person.get(key)
        if isinstance(value, str):
            person[key] = clean_line(value) or None
    phone = person.get("phone")
    if isinstance(phone, str):
        current = out.get("extra")
        if isinstance(current, dict) and current.get("phone_not_e164") is True:
            # A previous pass kept this number as its digits: parsing them again gave the
            # gateway's and the agent's passes two values (review of session 15), and the
            # digits of two numbers would parse as one number nobody has.
            person["phone"] = _digits(clean_line(phone)) or None
        else:
            value, ok = normalise_phone(phone)
            person["phone"] = value
            if not ok and value is not None:
                extra = dict(out.get("extra") or {})
                extra["phone_not_e164"] = True
                out["extra"] = extra
    email = person.get("email")
    if isinstance(email, str):
        person["email"] = normalise_email(email)
    if not any(person.get(k) for k in ("name", "phone", "email", "handle")):
        return None
    return person


def _check_attachments(items: list[Any]) -> list[Any]:
    cfg = _config
    if len(items) > cfg.max_attachments:
        raise InvalidEvent(
            "too_many_attachments", f"{len(items)} attachments > {cfg.max_attachments}"
        )
    cleaned = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            cleaned.append(item)
            continue
        size = item.get("size")
        if isinstance(size, float):  # 3e7: the int it is, checked and stored as one
            size = whole_bytes(size, f"attachment {i}: size")
        if isinstance(size, int) and size > cfg.max_attachment_bytes:
            shown = size if size < 10**15 else "over 10^15"  # 1e300 has 301 digits
            raise InvalidEvent(
                "attachment_too_large",
                f"attachment {i}: {shown} bytes > {cfg.max_attachment_bytes}",
            )
        url = item.get("url")
        if isinstance(url, str):
            url = clean_line(url)
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme not in ("http", "https", "s3"):
                raise InvalidEvent(
                    "attachment_not_url",
                    f"attachment {i}: content must be referenced by an http(s) URL",
                )
        new = dict(item)
        new["url"] = url
        if "size" in new:
            new["size"] = size
        if isinstance(new.get("name"), str):
            new["name"] = clean_line(new["name"]) or None
        cleaned.append(new)
    return cleaned


register_normaliser(normalise)
