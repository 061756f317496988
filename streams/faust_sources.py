"""The fingerprint of a faust-streaming function that one of our patches was checked against.

Three modules replace or copy Faust code (:mod:`streams.fastpath`, :mod:`streams.resume_order`,
:mod:`streams.natural_batches`). Each keeps the sha256 of the source it was written against
and keeps Faust's own behaviour on any other release, so an upgrade cannot silently run a patch
against code it was never compared with. Reading a source means reading a file, so a function's
digest is computed once per process.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from typing import Any


@functools.cache
def digest(function: Callable[..., Any]) -> str:
    """sha256 of ``inspect.getsource(function)``."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
