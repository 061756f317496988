"""Throughput benchmark: appeals/s classified on one core, batched.

Texts are drawn from the shipped corpus and made unique (a numbered suffix), so per-token
caches help only as much as they would on a real stream of fresh appeals with a familiar
vocabulary. Run: ``python -m workers.classification.bench`` or ``appeals classify bench``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["run_bench"]

_CORPUS = Path(__file__).with_name("corpus")


def _texts(n: int) -> list[str]:
    base: list[str] = []
    for name in ("train.jsonl", "test.jsonl"):
        p = _CORPUS / name
        if p.exists():
            base.extend(orjson.loads(line)["text"] for line in p.read_bytes().splitlines() if line)
    if not base:
        base = ["В доме нет отопления, на улице -30, дети мерзнут"]
    return [f"{base[i % len(base)]} №{i}" for i in range(n)]


def run_bench(n: int = 20_000, batch_size: int = 256, model: str | None = None) -> dict[str, Any]:
    """Load time (cold, in this process) and steady throughput over ``n`` texts."""
    t0 = time.perf_counter()
    from .classifier import load_classifier

    clf = load_classifier(model)
    load_s = time.perf_counter() - t0
    texts = _texts(n)
    clf.classify_batch(texts[:batch_size])  # warm the per-token caches with one batch
    t1 = time.perf_counter()
    c1 = time.process_time()
    for i in range(0, n, batch_size):
        clf.classify_batch(texts[i : i + batch_size])
    dt = time.perf_counter() - t1
    cpu = time.process_time() - c1
    mean_len = sum(map(len, texts)) / max(n, 1)
    # Wall time is what a worker gets on a free core; CPU time is what the classifier costs
    # whatever else runs on the machine (the figure the tests' floor uses).
    return {"n": n, "batch_size": batch_size, "seconds": round(dt, 3),
            "appeals_per_s": round(n / dt), "cpu_seconds": round(cpu, 3),
            "appeals_per_cpu_s": round(n / max(cpu, 1e-9)), "load_s": round(load_s, 3),
            "mean_chars": round(mean_len), "model_version": clf.version}


if __name__ == "__main__":
    print(orjson.dumps(run_bench()).decode())
