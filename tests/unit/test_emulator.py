"""The sandbox emulator's wrapper lets one request at a time into moto (not thread-safe)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from damso_ops.emulator import OneAtATime


def test_requests_from_many_threads_enter_the_application_one_at_a_time():
    inside, most, closed = [0], [0], []
    guard = threading.Lock()

    class Body(list):
        def close(self):
            closed.append(True)

    def app(environ, start_response):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with guard:
            inside[0] -= 1
        start_response("200 OK", [])
        return Body([environ["n"].encode()])

    wrapped = OneAtATime(app)
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda n: wrapped({"n": str(n)}, lambda status, headers: None), range(32)))
    assert most[0] == 1 and bodies == [[str(n).encode()] for n in range(32)] and len(closed) == 32
