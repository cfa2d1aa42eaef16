"""The inbox processor (a thread, or the main thread of its process before it starts its loop)
yields the CPU to the webhook that acknowledges updates."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bot.inbox_process import lower_priority
from hotline.config import Settings


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_the_processor_thread_runs_lower_and_the_webhook_thread_does_not() -> None:
    seen: dict[str, int] = {}
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def processor() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_priority(Settings().inbox_processor_nice)
        seen["change"] = os.getpriority(os.PRIO_PROCESS, tid) - before

    thread = threading.Thread(target=processor)
    thread.start()
    thread.join()
    expected = min(Settings().inbox_processor_nice, 19 - main_before)
    assert seen["change"] == expected > 0
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before


def test_nice_zero_leaves_the_priority_alone() -> None:
    tid = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, tid)
    lower_priority(0)
    assert os.getpriority(os.PRIO_PROCESS, tid) == before
