"""`ServerThread`: one model server's context manager entered, held open and exited by a thread
of its own, so that several servers start at the same time.

The thread lives as long as the server: the kernel's parent-death signal of a started server
(`process.py`) fires when the thread that started it ends, not when the job ends, so a thread
that started a server and returned would stop it at once."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from contextlib import AbstractContextManager

from tau_exp.endpoint import Endpoint

log = logging.getLogger(__name__)


class ServerThread:
    """Enters `manager` in a thread named `name`; `ready` resolves to its Endpoint (or its start
    error); `release` exits it there and raises what exiting raised."""

    def __init__(self, name: str, manager: AbstractContextManager[Endpoint]) -> None:
        self.ready: Future[Endpoint] = Future()
        self._manager = manager
        self._release = threading.Event()
        self._stop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._hold, name=name, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        try:
            with self._manager as endpoint:
                self.ready.set_result(endpoint)
                self._release.wait()
        except BaseException as error:  # the caller's thread raises it: in `ready` or in `release`
            if self.ready.done():
                self._stop_error = error
            else:
                self.ready.set_exception(error)

    def release(self, wait: bool = True) -> None:
        """Stop what the manager started (once it has started, if it is still starting). With
        `wait`, return when it is stopped and raise its stop error; without, return at once (the
        thread stops it on its own; at the job's exit the kernel stops the server with the thread)."""
        self._release.set()
        if not wait:
            return
        self._thread.join()
        if self._stop_error is not None:
            raise self._stop_error
