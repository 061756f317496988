"""``appeals classify ...`` commands: eval, train, text, export-feedback, bench.

``register(subparsers)`` plugs the ``classify`` group into the main ``appeals`` CLI;
``python -m workers.classification.cli classify ...`` runs it standalone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

__all__ = ["main", "register"]


def _cmd_eval(args: argparse.Namespace) -> int:
    from .classifier import load_classifier
    from .dataio import read_labelled
    from .evaluate import evaluate, format_report

    examples = [e for path in args.data for e in read_labelled(Path(path))]
    if not examples:
        print(f"error: {', '.join(args.data)}: no labelled lines", file=sys.stderr)
        return 2
    metrics, _ = evaluate(load_classifier(args.model), examples)
    if args.json:
        sys.stdout.write(orjson.dumps(metrics).decode() + "\n")
    else:
        print(format_report(metrics))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import SEED, train

    train(Path(args.data) if args.data else None, Path(args.out) if args.out else None,
          seed=SEED if args.seed is None else args.seed)
    return 0


def _cmd_text(args: argparse.Namespace) -> int:
    from .classifier import load_classifier

    clf = load_classifier(args.model)
    text = " ".join(args.text) if args.text else sys.stdin.read()
    res = clf.classify(text).to_dict()
    if args.explain:
        res["explain"] = clf.explain(text)
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .feedback import export_feedback

    n = export_feedback(Path(args.src), Path(args.out))
    print(f"wrote {n} training lines to {args.out}", file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    res = run_bench(n=args.n, batch_size=args.batch_size, model=args.model)
    sys.stdout.write(orjson.dumps(res).decode() + "\n")
    return 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``classify`` command group to an argparse subparsers object."""
    p = subparsers.add_parser("classify", help="classify appeals: eval, train, text, feedback",
                              description="Category/urgency classifier for Russian appeals.")
    sub = p.add_subparsers(dest="classify_cmd", required=True, metavar="COMMAND")

    e = sub.add_parser("eval", help="score labelled JSONL files (one, or several pooled)")
    e.add_argument("--data", required=True, action="append",
                   help='JSONL lines {"text","category","urgent"}; repeat to score several '
                        "files as one pooled set")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--model", default=None, help="model file (default: shipped model)")
    e.set_defaults(func=_cmd_eval)

    t = sub.add_parser("train", help="retrain the model reproducibly from the corpus")
    t.add_argument("--data", default=None,
                   help="corpus directory (all *.jsonl except test*; default: shipped corpus)")
    t.add_argument("--out", default=None, help="model path (default: shipped model path)")
    t.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=_cmd_train)

    x = sub.add_parser("text", help="classify one text and print JSON")
    x.add_argument("text", nargs="*", help="appeal text (default: read stdin)")
    x.add_argument("--explain", action="store_true", help="also show lemmas and rule hits")
    x.add_argument("--model", default=None)
    x.set_defaults(func=_cmd_text)

    f = sub.add_parser("export-feedback", help="triage decisions -> training corpus lines")
    f.add_argument("--from", dest="src", required=True, help="triage decisions JSONL")
    f.add_argument("--out", required=True, help="corpus JSONL to write")
    f.set_defaults(func=_cmd_export)

    b = sub.add_parser("bench", help="measure classification throughput (appeals/s)")
    b.add_argument("--n", type=int, default=20_000)
    b.add_argument("--batch-size", type=int, default=256)
    b.add_argument("--model", default=None)
    b.set_defaults(func=_cmd_bench)
    return p


def run(args: argparse.Namespace) -> int:
    """Dispatch parsed arguments; data errors become a one-line message and exit code 2."""
    from .dataio import DataError

    try:
        return int(args.func(args))
    except (DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m workers.classification.cli classify ...``."""
    parser = argparse.ArgumentParser(prog="appeals")
    subs = parser.add_subparsers(dest="command", required=True)
    register(subs)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
