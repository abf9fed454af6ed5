"""StopFlag: settable from signal handlers however many signals come."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from core.signals import StopFlag
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(30)

NESTED = """
import os, signal
from core.signals import StopFlag, stop_on_signals
stop = StopFlag()
calls = []
def handler(*_):
    calls.append(1)
    if len(calls) == 1:
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM lands inside the first handler
        for _ in range(1000):
            pass
    stop.set()
signal.signal(signal.SIGTERM, handler)
os.kill(os.getpid(), signal.SIGTERM)
print("stopped" if stop.wait(5) else "not stopped", len(calls), flush=True)
"""


def test_a_second_signal_inside_the_first_handler_still_stops():
    out = subprocess.run([sys.executable, "-c", NESTED], cwd=REPO, capture_output=True, text=True,
                         timeout=20)
    assert out.stdout.split() == ["stopped", "2"], out.stderr


def test_set_wakes_every_waiting_thread_and_later_waits_return_at_once():
    stop = StopFlag()
    woke = []
    threads = [threading.Thread(target=lambda: woke.append(stop.wait(10))) for _ in range(3)]
    for t in threads:
        t.start()
    assert stop.wait(0.01) is False
    stop.set()
    stop.set()  # idempotent
    for t in threads:
        t.join(5)
    assert woke == [True, True, True]
    assert stop.wait(None) is True and stop.is_set()
    stop.close()
