"""pymorphy3's dictionary backend: the C extension where its wheel exists, and the same words.

Why: on the issue's own (slow) machine the pure-Python DAWG look-ups behind the spelling
candidates of new words were a third of classification time and put the batched throughput
below the 5,000 appeals/s target (4,300-4,500 on one core); the C backend brings it back above.
A fresh install that silently fell back to the pure-Python backend would lose that without any
test noticing, and the switch must not change a single lemma or decision.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Prints a digest of lemmas, spelling fixes and classifier decisions over the shipped corpus
# plus typo'd words (the look-ups whose backend differs); argv[1] == "py" hides the extension.
_PROBE = r"""
import sys, hashlib, orjson
from pathlib import Path
if sys.argv[1] == "py":
    sys.modules["dawg"] = None
import pymorphy3.dawg
from workers.classification.classifier import load_classifier
from workers.classification.normalize import lemma, spell_fix, tokenize
texts = []
for p in sorted(Path("workers/classification/corpus").glob("*.jsonl")):
    texts += [orjson.loads(l)["text"] for l in p.read_bytes().splitlines() if l][:600]
typos = ["отапление", "сосуоьки", "леддяные", "подьезд", "трубапровод", "ёлка", "елка",
         "барнаульскй", "заявлениеее", "квртира", "ввода", "ыавыпр"]
clf = load_classifier()
words = sorted({t for x in texts for t in tokenize(x)} | set(typos))
out = {"backend": pymorphy3.dawg.EXTENSION_AVAILABLE,
       "lemmas": [lemma(w) for w in words], "fixes": [spell_fix(w) for w in words],
       "decisions": [c.to_dict() for c in clf.classify_batch(texts + typos)]}
body = orjson.dumps({k: v for k, v in out.items() if k != "backend"})
print(orjson.dumps({"backend": out["backend"], "n": len(words),
                    "digest": hashlib.sha256(body).hexdigest()}).decode())
"""


def _probe(mode: str) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, object] = orjson.loads(res.stdout.strip().splitlines()[-1])
    return out


_HAS_WHEEL = (platform.python_implementation() == "CPython"
              and platform.machine() == "x86_64")


@pytest.mark.skipif(not _HAS_WHEEL, reason="DAWG2 is a dependency on CPython/x86_64 only")
def test_the_c_dictionary_backend_is_installed() -> None:
    import pymorphy3.dawg

    assert pymorphy3.dawg.EXTENSION_AVAILABLE, (
        "pymorphy3 runs on its pure-Python DAWG backend: install DAWG2 (pyproject.toml)")


@pytest.mark.skipif(not _HAS_WHEEL, reason="needs both backends")
def test_both_backends_give_the_same_lemmas_fixes_and_decisions() -> None:
    c, py = _probe("c"), _probe("py")
    assert c["backend"] is True and py["backend"] is False
    assert c["n"] == py["n"] and int(str(c["n"])) > 1000
    assert c["digest"] == py["digest"]

