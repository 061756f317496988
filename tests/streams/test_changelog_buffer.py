"""``APPEALS_CHANGELOG_BUFFER``: how many table changelog records may wait before streams pause.

Faust's fixed 100 was less than one SLA batch writes, so under load every stream paused and
Faust logged "producer buffer full" ~15 times a second (issue 7). The pause itself stays (it
bounds memory); only its threshold is ours. The app is built in a child process: building it
here would install the Faust patches into the test process, and the patches' own tests need a
process without them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.settings import ConfigError, Settings

_PROBE = """
from streams.app import create_app
from streams.settings import Settings
app = create_app(Settings.load({"APPEALS_APP_ID": "changelog-buffer-test",
                                "APPEALS_CHANGELOG_BUFFER": "250"}))
print(app.producer.buffer.max_messages)
"""


def test_the_app_pauses_streams_only_past_the_configured_changelog_queue() -> None:
    assert Settings().changelog_buffer == 4096
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "250"


def test_a_queue_smaller_than_fausts_own_is_refused() -> None:
    with pytest.raises(ConfigError, match="APPEALS_CHANGELOG_BUFFER"):
        Settings(changelog_buffer=99)
