"""Channel adapters: each source system's native payload -> the canonical intake dict.

Importing this package registers every adapter with :mod:`workers.intake.core`, so a payload
without ``schema_version`` on ``appeals.intake.<channel>`` (or posted to the gateway with a
``channel`` field) is mapped by its channel's adapter. Each module's docstring documents the
native shape it accepts; fields an adapter does not map are kept in ``extra``, never dropped.
"""

from __future__ import annotations

from workers.intake.adapters import email, fz59, hotline, incident, pos, web
from workers.intake.core import register_adapter

ADAPTER_MODULES = (pos, incident, fz59, hotline, email, web)

for _module in ADAPTER_MODULES:
    register_adapter(_module.CHANNEL, _module.adapt, _module.ID_FIELDS)

#: Per channel, the native fields that carry the source's own id for the appeal.
NATIVE_ID_FIELDS: dict[str, tuple[str, ...]] = {m.CHANNEL: m.ID_FIELDS for m in ADAPTER_MODULES}

__all__ = ["ADAPTER_MODULES", "NATIVE_ID_FIELDS"]
