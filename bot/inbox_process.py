"""The inbox processor in a process of its own (PostgreSQL): acknowledgements never wait for it.

Why a process (``HOTLINE_INBOX_PROCESSING=process``): the engine's work is Python, and a thread
doing it shares the interpreter lock with the webhook, so a worker never uses more than one
core. In a process of its own, at a lower priority (``settings.inbox_processor_nice``), it uses
a second one: measured in ``bench/load_webhook.py`` on two cores, one worker went from 21 to 36
updates/s. The price shows where the machine has no core to spare: the processor's database
work (PostgreSQL's backends run at normal priority) and the worker's sends then compete with
the acknowledgements, and a second worker adds nothing -- there the thread (the default) is
better.

The processor is forked from the runtime once the bot is known (its name, which commands
addressed to it carry) and before the web server starts, so it shares the runtime's loaded
code and classifier copy-on-write and starts in milliseconds. It works from the database only
(its own pool; the parent's connections are never touched), and talks with the runtime over a
socket pair, one byte a message:

* runtime -> processor: ``w`` a row was recorded (wake up), ``s`` stop (drain, then exit);
* processor -> runtime: ``r`` ready, ``a`` an update was processed (wake the outbox dispatcher).

Nothing else crosses: every guarantee is the database's, as with any two workers (per-chat
advisory locks, ``inbound_updates`` once per update). If the runtime dies (even ``kill -9``)
the processor dies with it (Linux: ``PR_SET_PDEATHSIG``; elsewhere it sees the socket close
and stops as on ``s``): its open transactions roll back and what it has not processed stays
recorded for the next start. If the processor dies the runtime's ``finished`` raises and the
runtime shuts down, as when any of its parts fails; the process supervisor starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

WAKE, STOP, READY, PROCESSED = b"w", b"s", b"r", b"a"
#: What runs in the child: (stop, ready(wake), processed) -> runs the processor until ``stop``.
Body = Callable[[asyncio.Event, Callable[[Callable[[], None]], None], Callable[[], None]],
                Awaitable[None]]
#: Seconds the runtime waits, beyond the drain timeout, for the processor to exit after ``s``.
EXIT_GRACE = 10.0


class ForkedProcessor:
    """The runtime's side of the processor process.

    ``body(stop, ready, processed)`` runs in the child, in a fresh event loop: it builds the
    processor, hands its ``wake`` to ``ready`` (which tells the runtime) and runs it until
    ``stop`` is set; ``processed`` is for the processor to call after each update.
    """

    def __init__(self, body: Body,
                 *, after: Callable[[], None], nice: int, drain_timeout: float) -> None:
        self.body = body
        self.after = after
        self.nice = nice
        self.drain_timeout = drain_timeout
        self.pid: int | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._stopping = False
        self._exit_code: int | None = None
        self._reaper: asyncio.Task[None] | None = None

    # --- the runtime's side -------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        self._ready, self._finished = loop.create_future(), loop.create_future()
        with warnings.catch_warnings():
            # Python 3.12 warns about fork() in a process with threads; the child only runs
            # code of its own in a new thread and never takes a lock the parent's threads hold.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; it never returns
            ours.close()
            self._child(theirs, parent)
        theirs.close()
        self.pid = pid
        ours.setblocking(False)
        self._sock = ours
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout=60)
        except BaseException:
            await self._kill()
            raise

    def _on_readable(self) -> None:
        data = receive(self._sock) if self._sock is not None else None
        if data is None:
            return
        if not data:
            self._closed()
            return
        if READY in data and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        if PROCESSED in data:
            self.after()

    def _closed(self) -> None:
        """The processor's end of the socket closed: it has exited (or is about to)."""
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._reaper = loop.create_task(self._reap(), name="inbox processor exit")

    async def _reap(self) -> None:
        code = await asyncio.to_thread(self._wait_exit)
        error: BaseException | None = None
        if code != 0 or not self._stopping:
            error = RuntimeError(f"the inbox processor process exited with {_describe(code)}")
            log.error("%s", error)
        for future in (self._ready, self._finished):
            if future is not None and not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _wait_exit(self) -> int:
        if self._exit_code is None and self.pid is not None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self._exit_code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self._exit_code = 0
        return self._exit_code if self._exit_code is not None else 0

    def wake(self) -> None:
        self._send(WAKE)

    def _send(self, message: bytes) -> None:
        if self._sock is not None:
            send_to(self._sock, message)

    async def finished(self) -> None:
        assert self._finished is not None
        await asyncio.shield(self._finished)

    async def stop(self) -> None:
        """Ask the processor to drain and exit; kill it if it overstays."""
        if self.pid is None or self._finished is None:
            return
        self._stopping = True
        self._send(STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self._finished), self.drain_timeout + EXIT_GRACE)
        except TimeoutError:
            log.error("the inbox processor did not stop within %.0f s; killed",
                      self.drain_timeout + EXIT_GRACE)
            await self._kill()
        except Exception:
            pass  # already logged by _reap

    async def _kill(self) -> None:
        self._stopping = True
        if self.pid is not None and self._exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await asyncio.to_thread(self._wait_exit)

    # --- the processor's side (in the child) --------------------------------------------------
    def _child(self, sock: socket.socket, parent: int) -> None:  # pragma: no cover - runs after fork
        code = 1
        try:
            # The parent's loop wakes on signals through a socket this process shares: a
            # signal here must not write to it. The runtime leads the shutdown (``s`` or the
            # socket closing), so a Ctrl-C or SIGTERM sent to the whole group is left to it.
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(-1)
                for number in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(number, signal.SIG_IGN)
            _die_with(parent)
            lower_priority(self.nice)
            outcome: list[int] = []
            # A new thread: this one is still inside the parent's running loop (its frames,
            # its "running loop" mark), which the child never touches.
            thread = threading.Thread(target=lambda: outcome.append(self._child_thread(sock)),
                                      name="inbox processor")
            thread.start()
            thread.join()
            code = outcome[0] if outcome else 1
        except BaseException:
            log.exception("inbox processor process failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def _child_thread(self, sock: socket.socket) -> int:  # pragma: no cover - runs after fork
        try:
            asyncio.run(self._child_run(sock))
            return 0
        except BaseException:
            log.exception("inbox processor failed")
            return 1

    async def _child_run(self, sock: socket.socket) -> None:  # pragma: no cover - after fork
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        stop = asyncio.Event()
        wakes: list[Callable[[], None]] = []

        def send(message: bytes) -> None:
            send_to(sock, message)

        def readable() -> None:
            data = receive(sock)
            if data is None:
                return
            if not data:  # the runtime is gone (stopped or killed): stop as asked to
                loop.remove_reader(sock.fileno())
                log.warning("inbox processor: the runtime is gone; stopping")
                stop.set()
                return
            if STOP in data:
                stop.set()
            if WAKE in data:
                for wake in wakes:
                    wake()

        loop.add_reader(sock.fileno(), readable)

        def ready(wake: Callable[[], None]) -> None:
            wakes.append(wake)
            send(READY)

        await self.body(stop, ready, lambda: send(PROCESSED))


def receive(sock: socket.socket) -> bytes | None:
    """The messages waiting on the (non-blocking) socket; b"" when the other end has closed,
    None when there is nothing to read after all."""
    try:
        return sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def send_to(sock: socket.socket, message: bytes) -> None:
    """Send one message byte; a full buffer already holds a message of each kind that matters
    (a wake, a stop), and a closed socket is noticed by the reader."""
    with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
        sock.send(message)


def lower_priority(nice: int) -> None:
    """Lower the calling thread's scheduling priority by ``nice`` (threads made afterwards
    inherit it). On Linux ``setpriority`` on a thread id affects that thread only."""
    if not sys.platform.startswith("linux") or nice <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        log.debug("could not lower the inbox processor's priority", exc_info=True)


def _die_with(parent: int) -> None:
    """Linux: be killed with the runtime (``kill -9`` of a worker takes its processor with it,
    as when it was a thread), instead of finishing alone after the socket closes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.debug("could not ask to die with the runtime", exc_info=True)
        return
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"code {code}"
