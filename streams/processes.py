"""Worker processes started by the project itself: the demo, the benchmark and the tests.

One place knows how to hand a :class:`Settings` to a child ``appeals worker`` (through its
APPEALS_* environment) and how to stop it gently (SIGTERM, so Faust commits) or not (SIGKILL).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.devstack import die_with_parent, free_port
from streams.settings import Settings


def worker_env(settings: Settings, metrics_port: int) -> dict[str, str]:
    """The child's environment: every field of ``settings`` written out explicitly.

    So the child runs with exactly the settings the parent holds (the demo loads them from the
    user's environment; tests build isolated ones). Variables that sub-systems read on their
    own (``APPEALS_POLICY_FILE``, ``APPEALS_CALENDAR_FILE``, ...) are passed through.
    """
    env = {k: v for k, v in os.environ.items() if k != "APPEALS_CONFIG"}
    for f in dataclasses.fields(settings):
        if f.name == "extra":
            continue
        value = getattr(settings, f.name)
        if value is None:
            text = ""  # an optional setting left unset (Settings.load reads "" as unset)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        env[f"APPEALS_{f.name.upper()}"] = text
    env["APPEALS_METRICS_PORT"] = str(metrics_port)
    config = os.environ.get("APPEALS_CONFIG")
    if config and settings.extra:
        env["APPEALS_CONFIG"] = config  # sub-systems read their own sections from it
    return env


class WorkerProcess:
    """One ``appeals worker`` child process; ``kill`` is a SIGKILL, as in a crash."""

    def __init__(self, settings: Settings, log_path: Path, metrics_port: int | None = None,
                 extra_env: dict[str, str] | None = None,
                 command: list[str] | None = None, new_session: bool = False) -> None:
        self.settings = settings
        self.log_path = log_path
        self.metrics_port = metrics_port or free_port()
        self.extra_env = extra_env or {}
        # Tests start small purpose-built workers the same way (same settings in the environment).
        self.command = command or [sys.executable, "-m", "workers.cli", "worker"]
        # In a session of its own, a terminal's Ctrl-C reaches only the parent, which stops
        # the worker itself when it is done with it (the demo drains first).
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = worker_env(self.settings, self.metrics_port)
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=self.new_session, preexec_fn=die_with_parent(),
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as resp:
            return resp.read().decode()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_worker(settings: Settings, metrics_port: int, log_path: Path,
                 new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start ``appeals worker`` with ``settings``; its output goes to ``log_path``."""
    proc = WorkerProcess(settings, log_path, metrics_port, new_session=new_session).start().proc
    assert proc is not None
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (Faust commits offsets and flushes on it), then SIGKILL after ``timeout``."""
    stop_processes([proc], timeout)


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM to every one at once, then wait for them together; SIGKILL for those still
    running after ``timeout`` (stopped one after the other, N workers took up to N × 20 s)."""
    alive = [proc for proc in procs if proc.poll() is None]
    for proc in alive:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in alive:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
