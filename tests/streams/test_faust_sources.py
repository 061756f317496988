"""The digest of a Faust function is its source's sha256, read from disk once per process."""

from __future__ import annotations

import hashlib
import inspect

from streams import faust_sources


def _sample() -> int:
    return 1


def test_digest_is_the_sha256_of_the_source_and_is_read_once() -> None:
    faust_sources.digest.cache_clear()
    expected = hashlib.sha256(inspect.getsource(_sample).encode()).hexdigest()
    assert faust_sources.digest(_sample) == expected
    assert faust_sources.digest(_sample) == expected
    info = faust_sources.digest.cache_info()
    assert (info.misses, info.hits) == (1, 1)
