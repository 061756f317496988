"""``appeals classify ...`` commands: eval, train, text, export-feedback, bench.

``register(subparsers)`` plugs the ``classify`` group into the main ``appeals`` CLI;
``python -m workers.classification.cli classify ...`` runs it standalone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from workers.cli import positive_int, setting_value

__all__ = ["main", "register"]


def _model(args: argparse.Namespace) -> str | None:
    """``--model``, else APPEALS_CLASSIFIER_MODEL (the model the workers load), else None: the
    shipped model. Why the setting: `eval` and `text` should judge the model a deployment runs
    (one retrained on feedback lives outside the package), not always the packaged one. Only
    that setting is read: these commands need no broker, and an evaluator's bad APPEALS_KAFKA
    or APPEALS_PARTITIONS stopped them."""
    if args.model:
        return str(args.model)
    from streams.settings import Settings

    return Settings.load(only=("classifier_model",)).classifier_model or None


def _cmd_eval(args: argparse.Namespace) -> int:
    from .classifier import load_classifier
    from .dataio import read_labelled
    from .evaluate import evaluate, format_report

    examples = [e for path in args.data for e in read_labelled(Path(path))]
    if not examples:
        print(f"error: {', '.join(args.data)}: no labelled lines", file=sys.stderr)
        return 2
    metrics, _ = evaluate(load_classifier(_model(args)), examples)
    if args.json:
        sys.stdout.write(orjson.dumps(metrics).decode() + "\n")
    else:
        print(format_report(metrics))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .classifier import DEFAULT_MODEL_PATH
    from .train import CORPUS_DIR, SEED, train

    out = Path(args.out) if args.out else DEFAULT_MODEL_PATH
    beyond_corpus = bool(args.extra) or (
        args.data is not None and Path(args.data).resolve() != CORPUS_DIR.resolve())
    root = _package_dir_holding(out)
    if beyond_corpus and root is not None and not args.allow_in_package:
        # A model keeps word and character n-grams of its training texts: trained on exported
        # feedback (citizens' names, phones) and written into the package, it shipped in every
        # wheel and image, and replaced the reproducible shipped model.
        given = "--data/--extra" if args.extra and args.data else (
            "--extra" if args.extra else "--data")
        print(f"error: with {given}, the model's vocabulary holds those texts; --out {out} is "
              f"inside the package directory {root}, whose files ship in the wheel and the "
              f"Docker image; write it elsewhere (e.g. --out {DEFAULT_TRAINED_OUT}, then "
              "APPEALS_CLASSIFIER_MODEL) or pass --allow-in-package", file=sys.stderr)
        return 2
    try:
        train(Path(args.data) if args.data else None, Path(args.out) if args.out else None,
              seed=SEED if args.seed is None else args.seed,
              embeddings=True if args.word_vectors else None,
              extra=[Path(p) for p in args.extra])
    except (ImportError, FileNotFoundError) as exc:
        if not args.word_vectors:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_text(args: argparse.Namespace) -> int:
    from .classifier import load_classifier

    clf = load_classifier(_model(args))
    text = " ".join(args.text) if args.text else sys.stdin.read()
    if not text.strip():
        print("appeals classify text: error: no text (give it as arguments or on stdin)",
              file=sys.stderr)
        return 2
    res = clf.classify(text).to_dict()
    if args.explain:
        res["explain"] = clf.explain(text)
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


#: Top-level packages of the project (pyproject's ``packages.find``): every *.jsonl under
#: their directories is package data, so it ships in the wheel and the Docker image.
_SHIPPED_PACKAGES = ("workers", "streams", "schemas", "monitoring")
#: Where ``export-feedback`` writes by default: outside the packages, git- and docker-ignored.
DEFAULT_FEEDBACK_OUT = Path("var") / "feedback" / "feedback.jsonl"
#: Where the documentation puts a model trained on more than the shipped corpus.
DEFAULT_TRAINED_OUT = Path("var") / "models" / "classifier.pkl"


def _package_roots() -> list[Path]:
    """The directories the project's packages are imported from (source tree or install)."""
    roots: list[Path] = []
    for name in _SHIPPED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(loc).resolve() for loc in spec.submodule_search_locations)
    return roots


def _package_dir_holding(path: Path) -> Path | None:
    """The package directory ``path`` lies in, if any."""
    target = path.resolve()
    return next((root for root in _package_roots() if target.is_relative_to(root)), None)


def _cmd_export(args: argparse.Namespace) -> int:
    from .feedback import KafkaUnavailable, export_feedback, export_feedback_from_kafka

    root = _package_dir_holding(Path(args.out))
    if root is not None and not args.allow_in_package:
        # The exported file holds citizens' texts: under a package directory it is package data
        # and ships in every wheel and Docker image (the documented path was in the corpus).
        print(f"error: --out {args.out} is inside the package directory {root}, whose files "
              f"ship in the wheel and the Docker image; write it elsewhere (default "
              f"{DEFAULT_FEEDBACK_OUT}) or pass --allow-in-package", file=sys.stderr)
        return 2
    if args.src is not None:
        n = export_feedback(Path(args.src), Path(args.out))
    else:
        from streams.settings import ConfigError, Settings

        try:
            settings = Settings.load()
            if args.kafka:
                settings = settings.replace(kafka=args.kafka)
            if args.topic_prefix is not None:
                settings = settings.replace(topic_prefix=args.topic_prefix)
        except ConfigError as exc:
            print(f"error: configuration: {exc}", file=sys.stderr)
            return 2
        try:
            with _quiet_kafka_logs():
                n = export_feedback_from_kafka(
                    settings, Path(args.out), progress=None if args.quiet else sys.stderr,
                    kafka_source="--kafka" if args.kafka else "APPEALS_KAFKA")
        except KafkaUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"wrote {n} training lines to {args.out}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """The Kafka client logs each failed connection attempt; the command reports the outcome
    in one line instead (only while the export runs, for the stand-alone command)."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    res = run_bench(n=args.n, batch_size=args.batch_size, model=_model(args))
    sys.stdout.write(orjson.dumps(res).decode() + "\n")
    return 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``classify`` command group to an argparse subparsers object."""
    p = subparsers.add_parser("classify",
                              help="classify appeals: eval, train, text, export-feedback, bench",
                              description="Category/urgency classifier for Russian appeals.")
    sub = p.add_subparsers(dest="classify_cmd", required=True, metavar="COMMAND")

    e = sub.add_parser(
        "eval", help="score labelled JSONL files (one, or several pooled)",
        description="Score the classifier on labelled JSONL files: per-category precision, "
                    "recall and F1, the confusion matrix, urgent precision and recall. The top "
                    "category is scored even when its confidence is below the triage "
                    "threshold. With --json: one object whose keys include n, accuracy, "
                    "macro_f1, urgent_precision, urgent_recall.")
    e.add_argument("--data", required=True, action="append",
                   help='JSONL lines {"text","category","urgent"} (UTF-8; gzip, a byte order '
                        "mark or one JSON array of such objects are read too; - is stdin); "
                        "repeat to score several files as one pooled set")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--model", default=None,
                   help="model file (default: APPEALS_CLASSIFIER_MODEL, else the shipped model)")
    e.set_defaults(func=_cmd_eval)

    t = sub.add_parser(
        "train", help="retrain the model reproducibly from the corpus",
        description="Train the category and urgency models on every *.jsonl of --data not named "
                    "test* plus each --extra file. Without --out the shipped model is "
                    "overwritten, which is refused when training on anything beyond the "
                    "shipped corpus (its texts end up in the model's vocabulary, and the "
                    "package ships in the wheel and the image): write such a model elsewhere, "
                    f"e.g. --out {DEFAULT_TRAINED_OUT}, and point the workers at it with "
                    "APPEALS_CLASSIFIER_MODEL.",
        epilog="Exit status: 0 trained; 2 bad data, or a model trained on more than the "
               "shipped corpus written inside the package directory.")
    t.add_argument("--data", default=None,
                   help="corpus directory (all *.jsonl except test*; default: shipped corpus)")
    t.add_argument("--extra", action="append", default=[], metavar="FILE",
                   help="one more training JSONL file outside the corpus directory, e.g. "
                        f"exported triage feedback ({DEFAULT_FEEDBACK_OUT}); repeatable")
    t.add_argument("--out", default=None,
                   help="model path (default: the shipped model's, allowed only for the "
                        f"shipped corpus alone; e.g. {DEFAULT_TRAINED_OUT})")
    t.add_argument("--allow-in-package", action="store_true",
                   help="write a model trained on --extra/--data inside the package directory "
                        "anyway (it would then ship in the wheel and the Docker image)")
    t.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    t.add_argument("--word-vectors", action="store_true",
                   help="add the pre-trained word-vector block (issue 4, round 4: not shipped; "
                        "needs `pip install --no-deps natasha==1.6.0 navec==0.10.0`)")
    t.set_defaults(func=_cmd_train)

    x = sub.add_parser("text", help="classify one text and print JSON")
    x.add_argument("text", nargs="*", help="appeal text (default: read stdin)")
    x.add_argument("--explain", action="store_true", help="also show lemmas and rule hits")
    x.add_argument("--model", default=None,
                   help="model file (default: APPEALS_CLASSIFIER_MODEL, else the shipped model)")
    x.set_defaults(func=_cmd_text)

    f = sub.add_parser(
        "export-feedback", help="triage decisions -> training corpus lines",
        description=(
            "Write human triage decisions as training lines {text, category, urgent, style, "
            "appeal_id}. By default they are read from the Kafka topic appeals.triage.feedback "
            "(APPEALS_KAFKA, APPEALS_TOPIC_PREFIX), where the triage agent publishes every "
            "decision it routes an appeal on, with the appeal's text and the decided category "
            "and urgency (the classifier's flag when the decision left it out); the topic is "
            "read once from its beginning to its current end (365 days retained), without a "
            "consumer group. --from FILE reads a "
            "JSONL of the same fields (appeal_id, text, category, urgent) instead. The first "
            "decision per appeal wins, identical texts are written once and texts whose "
            "decisions disagree are left out (counted on stderr). The file holds citizens' "
            f"texts: it goes to {DEFAULT_FEEDBACK_OUT} by default (git- and docker-ignored), "
            "never under the package directory, whose files ship in the wheel and the image; "
            f"train on it with `appeals classify train --extra {DEFAULT_FEEDBACK_OUT}`."),
        epilog="Exit status: 0 written; 2 bad input, the broker unreachable, or --out inside "
               "the package directory.")
    f.add_argument("--from", dest="src", default=None, metavar="FILE",
                   help="read decisions from this JSONL file instead of Kafka")
    f.add_argument("--out", default=str(DEFAULT_FEEDBACK_OUT),
                   help=f"JSONL to write (default: {DEFAULT_FEEDBACK_OUT}, from the working "
                        "directory; its directory is created)")
    f.add_argument("--allow-in-package", action="store_true",
                   help="write --out even inside the package directory (it would then ship "
                        "in the wheel and the Docker image)")
    f.add_argument("--kafka", type=setting_value("kafka"), default=None,
                   help="broker URL, kafka://host:port (default: APPEALS_KAFKA)")
    f.add_argument("--topic-prefix", type=setting_value("topic_prefix"), default=None,
                   help="topic name prefix (default: APPEALS_TOPIC_PREFIX)")
    f.add_argument("--quiet", action="store_true", help="no progress on stderr")
    f.set_defaults(func=_cmd_export)

    b = sub.add_parser(
        "bench", help="measure classification throughput (appeals/s)",
        description="Classify --n corpus texts made unique by a number (their words are "
                    "cached after the first batch: the top-level appeals_per_s), then the same "
                    "texts each with a typo and a made-up surname and street (seeded, the same "
                    "on every run; key 'unseen': new words cost a spelling fix and a guessed "
                    "lemma), in batches of --batch-size as the worker does, and print both "
                    "throughputs (appeals/s) as one JSON line. Needs no broker or Redis.")
    b.add_argument("--n", type=positive_int, default=20_000,
                   help="texts to classify in each pass (default 20,000)")
    b.add_argument("--batch-size", type=positive_int, default=256,
                   help="texts per classify_batch call, as the worker batches them (default 256)")
    b.add_argument("--model", default=None,
                   help="model file (default: APPEALS_CLASSIFIER_MODEL, else the shipped model)")
    b.set_defaults(func=_cmd_bench)
    return p


def run(args: argparse.Namespace) -> int:
    """Dispatch parsed arguments; data errors and files that cannot be read or written (a
    directory, no permission, a full disk) become a one-line message and exit code 2."""
    from .dataio import DataError

    try:
        return int(args.func(args))
    except BrokenPipeError:
        raise  # the reader went away: the main CLI ends quietly with status 141
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # ``eval --model DIR``, ``train --out DIR``, ``export-feedback --out DIR`` ended in an
        # IsADirectoryError traceback.
        name = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename
        where = f"{name}: {e.strerror}" if e.filename and e.strerror else str(e)
        print(f"error: {where}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m workers.classification.cli classify ...``."""
    parser = argparse.ArgumentParser(prog="appeals")
    subs = parser.add_subparsers(dest="command", required=True)
    register(subs)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
