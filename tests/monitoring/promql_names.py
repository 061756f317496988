"""Find the metric names a PromQL expression reads, without a full PromQL parser.

The dashboards and alert rules must only query series the workers export
(:data:`monitoring.metrics.METRIC_NAMES`), series Prometheus itself makes (``up``) and our own
recording rules. A renamed metric would otherwise leave an empty panel or a silent alert.

How it works: a small lexer splits the expression into strings, numbers/durations, identifiers
and punctuation; then one pass over the tokens keeps every identifier that names a series:

* identifiers followed by ``(`` are functions or aggregations (``rate(``, ``sum(``), and so
  are aggregations followed by a grouping (``sum by (stage) (…)``);
* PromQL keywords (``by``, ``and``, ``offset``, ``bool`` …) are skipped, and the label list after
  ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right`` is skipped as a whole;
* inside ``{…}`` identifiers are label names, except that ``__name__="x"`` names the metric x;
* ``[…]`` (ranges, subqueries, Grafana's ``$__rate_interval``) and quoted strings are skipped;
* Grafana variables (``$authority``, ``${window}``) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "offset", "bool", "inf", "nan", "atan2",
    }
)  # fmt: skip
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
AGGREGATORS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:[smhdwy]|ms)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
    """,
    re.VERBOSE,
)


class PromQLSyntaxError(ValueError):
    pass


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise PromQLSyntaxError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind not in ("ws", "comment"):
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


def metric_names(expr: str) -> set[str]:
    """Metric names read by one PromQL expression."""
    tokens = tokenize(expr)
    names: set[str] = set()
    i, brace, bracket = 0, 0, 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "{":
            brace += 1
        elif text == "}":
            brace -= 1
        elif text == "[":
            bracket += 1
        elif text == "]":
            bracket -= 1
        elif kind == "ident" and bracket == 0:
            if brace > 0:
                # A label name; `__name__="metric"` is a metric selector in disguise.
                if text == "__name__" and nxt in ("=", "==") and i + 2 < len(tokens):
                    value_kind, value = tokens[i + 2]
                    if value_kind == "string":
                        names.add(value[1:-1])
            elif text.lower() in GROUPING and nxt == "(":
                i = _skip_parens(tokens, i + 1)
                continue
            elif text.lower() in KEYWORDS or nxt == "(":
                pass  # keyword, function or aggregation operator
            elif text.lower() in AGGREGATORS and nxt.lower() in ("by", "without"):
                pass  # `sum by (label) (expr)`
            else:
                names.add(text)
        if brace < 0 or bracket < 0:
            raise PromQLSyntaxError(f"unbalanced brackets in {expr!r}")
        i += 1
    if brace or bracket:
        raise PromQLSyntaxError(f"unbalanced brackets in {expr!r}")
    return names


def _skip_parens(tokens: list[tuple[str, str]], start: int) -> int:
    """Index just past the parenthesis group opening at ``start``."""
    depth = 0
    for j in range(start, len(tokens)):
        if tokens[j][1] == "(":
            depth += 1
        elif tokens[j][1] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise PromQLSyntaxError("unclosed label list")


_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<expr>.*),)?\s*(?P<label>\w+)\s*\)\s*$", re.S
)


def template_query_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (``label_values(metric, label)``,
    ``query_result(expr)``, ``metrics(regex)`` is not allowed since it cannot be checked)."""
    m = _LABEL_VALUES.match(query)
    if m:
        return metric_names(m.group("expr")) if m.group("expr") else set()
    m = re.match(r"^\s*query_result\((?P<expr>.*)\)\s*$", query, re.S)
    if m:
        return metric_names(m.group("expr"))
    if re.match(r"^\s*(label_names|metrics)\(", query):
        return set()
    return metric_names(query)


def unknown_names(exprs: Iterable[str], known: Iterable[str]) -> dict[str, set[str]]:
    """Map each expression to the names it reads that are not in ``known`` (only failures)."""
    allowed = set(known)
    bad: dict[str, set[str]] = {}
    for expr in exprs:
        missing = metric_names(expr) - allowed
        if missing:
            bad[expr] = missing
    return bad
