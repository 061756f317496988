"""Benchmark: near-duplicate sketches one text at a time against a whole intake batch at once.

Why it exists (issue 7): py-spy of a loaded worker put the intake's near-duplicate signatures
at ~10% of its CPU, and nearly all of that was numpy call overhead on short arrays (an appeal's
text is ~130 characters). :func:`workers.intake.near_duplicates.sketches` hashes a batch as one
array. This measures both on the bench's own generated appeals, in one run, as a ratio, and
checks that both give the same sketches (the stored sketches must stay comparable).

Run: ``.venv/bin/python -m benchmarks.near_dup_sketches [--batch 500] [--rounds 20] [--json]``.
CPU time of this process (``time.process_time``), so another busy core does not count.
``--memory`` also measures the worst batch for memory: ``--batch`` letters at the intake's
20,000-character limit, peak allocation (tracemalloc) hashed in runs of
``SKETCH_CHUNK_CODEPOINTS`` against all in one array (what the batch path first did).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from workers.demo.generator import Generator
from workers.intake.near_duplicates import SKETCH_CHUNK_CODEPOINTS, sketch, sketches

MAX_TEXT = 20_000  # APPEALS_MAX_TEXT_LENGTH's default


def _texts(count: int, seed: int) -> list[str]:
    gen = Generator(seed=seed, malformed_share=0.0, run_id=f"ndbench{seed}")
    now = time.time()
    return [str(orjson.loads(gen.appeal(now).value).get("text") or "") for _ in range(count)]


def _per_text_us(fn: Callable[[], Any], texts: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) / texts * 1e6)
    return statistics.median(samples)


def peak_mb(batch: int, chunk: int, seed: int = 7) -> float:
    """Peak allocation of sketching ``batch`` letters of ``MAX_TEXT`` characters at once."""
    rng = random.Random(seed)
    letters = "абвгдежзийклмнопрстуфхцчшщыэюя "
    texts = ["".join(rng.choice(letters) for _ in range(MAX_TEXT)) for _ in range(batch)]
    tracemalloc.start()
    try:
        sketches(texts, chunk=chunk)
        return round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
    finally:
        tracemalloc.stop()


def run(batch: int = 500, rounds: int = 20, seed: int = 7) -> dict[str, Any]:
    texts = _texts(batch, seed)
    one_by_one = [sketch(t) for t in texts]
    if sketches(texts) != one_by_one:
        raise AssertionError("batch sketches differ from one-by-one sketches")
    single = _per_text_us(lambda: [sketch(t) for t in texts], batch, rounds)
    batched = _per_text_us(lambda: sketches(texts), batch, rounds)
    return {
        "batch": batch,
        "rounds": rounds,
        "mean_text_chars": round(sum(map(len, texts)) / batch, 1),
        "one_by_one_us_per_text": round(single, 2),
        "batched_us_per_text": round(batched, 2),
        "batched_over_one_by_one": round(batched / single, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.near_dup_sketches",
        description="CPU per text of near-duplicate sketches, one by one vs a batch at once.")
    parser.add_argument("--batch", type=int, default=500, help="texts per batch (default 500, "
                        "the worker's APPEALS_BATCH_SIZE)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds; the median is "
                        "reported (default 20)")
    parser.add_argument("--memory", action="store_true", help="also the peak memory of a batch "
                        "of maximum-length letters, in runs vs in one array (~5 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    opts = parser.parse_args(argv)
    if opts.batch < 1 or opts.rounds < 1:
        parser.error("--batch and --rounds must be at least 1")
    result = run(opts.batch, opts.rounds)
    if opts.memory:
        result["max_length_batch_peak_mb_in_runs"] = peak_mb(opts.batch, SKETCH_CHUNK_CODEPOINTS)
        result["max_length_batch_peak_mb_one_array"] = peak_mb(opts.batch, 1 << 62)
    if opts.json:
        print(json.dumps(result))
    else:
        print(f"{result['batch']} texts of {result['mean_text_chars']} characters on average, "
              f"median of {result['rounds']} rounds (CPU time):")
        print(f"  one by one  {result['one_by_one_us_per_text']:8.2f} us/text")
        print(f"  batch       {result['batched_us_per_text']:8.2f} us/text  "
              f"(x{result['batched_over_one_by_one']} of one by one)")
        if opts.memory:
            print(f"{result['batch']} letters of {MAX_TEXT:,} characters, peak memory: "
                  f"{result['max_length_batch_peak_mb_in_runs']} MB in runs of "
                  f"{SKETCH_CHUNK_CODEPOINTS:,} code points, "
                  f"{result['max_length_batch_peak_mb_one_array']} MB in one array")
    return 0


if __name__ == "__main__":
    sys.exit(main())
