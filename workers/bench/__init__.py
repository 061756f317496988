"""``appeals bench``: throughput and latency of the pipeline against a bare-consumer ceiling.

See :mod:`workers.bench.runner` for what is measured and ``NOTES.md`` for what we tried.
"""
