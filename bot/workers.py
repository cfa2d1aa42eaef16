"""Several webhook workers on one port: ``hotline run --webhook --workers N``.

One Python process serves one CPU core at most, and the engine's work per update is mostly
Python; with PostgreSQL (SPEC §9) several processes can share the load. The parent forks
``N`` children before any event loop or connection exists (so the children inherit its
imports and start at once); each child runs a whole ``BotRuntime`` and listens on the same
host and port with ``SO_REUSEPORT``, so the kernel spreads incoming connections over them.
Everything else already copes with several workers: the scheduler elects one leader with an
advisory lock, outbox rows are claimed with ``FOR UPDATE SKIP LOCKED``, updates are
de-duplicated by (channel, update id) in the database.

The parent only supervises: SIGTERM/SIGINT are passed on to every child (each drains as a
single ``hotline run`` would), and when one child fails the others are stopped too, so a
half-running service never goes unnoticed. The exit code is the first failure's.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from hotline.errors import ConfigError, HotlineError

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def check_port(host: str, port: int) -> None:
    """Fail once, in the parent, when the port cannot be shared (rather than N times)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers needs SO_REUSEPORT, which this system does not have")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((host, port))
    except OSError as error:
        reason = "it is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise ConfigError(
            f"cannot listen on {host}:{port} ({reason}); set HOTLINE_WEBHOOK_HOST / "
            "HOTLINE_WEBHOOK_PORT"
        ) from None
    finally:
        probe.close()


def run_workers(count: int, work: Callable[[int], int | None]) -> int:
    """Fork ``count`` children running ``work(index)``; wait for all; return an exit code."""
    children: dict[int, int] = {}
    stopping = False

    def stop_all(signum: int | None = None, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    # Handlers first, so a signal between two forks reaches the children already started.
    for sig in _SIGNALS:
        signal.signal(sig, stop_all)
    try:
        for index in range(count):
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, measured by the process test
                os._exit(_child(index, work))
            children[pid] = index
            log.info("worker %d started (pid %d)", index, pid)
        failure = 0
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                log.info("worker %d (pid %d) stopped", index, pid)
                continue
            failure = failure or (code if code > 0 else 1)
            if not stopping:
                log.error("worker %d (pid %d) failed (exit %d); stopping the others", index, pid,
                          code)
                stop_all()
        return failure
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(index: int, work: Callable[[int], int | None]) -> int:
    """Run one worker; an expected failure is one sentence, like ``hotline``'s own errors."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_DFL)  # the runtime installs its own in its loop
    code = 1
    try:
        code = work(index) or 0
    except HotlineError as error:
        print(f"error: worker {index}: {error}", file=sys.stderr)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code
