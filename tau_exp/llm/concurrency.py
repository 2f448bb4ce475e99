"""How many model requests a job keeps in flight to each server: one `Limiter` per endpoint of
a job, and the slots through which every model call passes (`llm.ChatModel` takes a slot
around each HTTP attempt and gives it back with the attempt's latency and outcome).

`run.concurrency=load_aware` (the default) adapts the job's limit between 1 and
`run.max_concurrency` (or `server.max_in_flight`, if lower) with additive increase and
multiplicative decrease, as TCP shares a link:

- The job's sampler (`servers/load.py`, one thread per endpoint) reads the server's
  `/metrics` every `run.server_poll_s` and calls `observe`. The server is congested when more
  requests wait in its queue than half of those it is running (`vllm:num_requests_waiting` >
  0.5 × `vllm:num_requests_running`): each running request that ends lets a waiting one in, so
  that queue is about half a request's service time long — short enough to cost little
  latency, long enough that the server never idles between one job's call and its next. Or, for a server without
  metrics, when the median latency of the calls of the last interval exceeds twice the lowest
  median of the last minute (and by more than 50 ms: below that, no decision). A call that
  timed out or was refused as overloaded (HTTP 429, 503) is a congestion signal too.
- Congested: the limit is multiplied by 0.5, at most once per interval and once per round trip
  (the median latency of the last interval's calls: a cut shows only once the calls sent
  before it have ended). Not congested, and the
  job used its whole limit: the limit grows by 1 per interval — or, until the first congestion
  signal, by 1 per call that ends while the limit is in use (doubling every round trip: "slow
  start", so a job alone on an idle server reaches its concurrency in a few round trips).

Every job sees the same queue of a shared server and cuts its share in proportion to its
size, while all grow by the same step: without talking to each other, jobs converge to equal
shares that together keep the server's queue short. `run.concurrency=fixed` never adapts:
every (task, trial) in flight may have a request in flight, as before (the limit is
`run.max_concurrency`, or `server.max_in_flight` when set).

A call that waits for a slot is not yet an HTTP request: its timeout starts when it is sent.

**Where the limit lives.** Episodes may run in worker processes (`job/workers.py`), whose threads
make the HTTP calls. The limit of a job lives in the job's process only: a worker asks for a
slot over the pipe on which it receives its episodes (`RemoteSlots`), the job grants it when
the limiter has room, and the worker gives it back over the same pipe. No lock or counter is
shared between processes (a worker killed while holding one would leave it held): when a
worker dies, the job gives its slots back itself. A round trip on a local pipe costs well under
a millisecond, against model calls of tens of milliseconds to minutes.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from statistics import median
from typing import Protocol

from tau_exp.errors import Cancelled

DECREASE = 0.5  # the limit is multiplied by this when the server is congested
# Congested when more requests wait than this fraction of those running: the queue's wait in
# service times (each ending request admits a waiting one).
QUEUE_TOLERANCE = 0.5
LATENCY_TOLERANCE = 2.0  # without metrics: congested above this many times the lowest recent median
LATENCY_SLACK_S = 0.05  # ... and this much above it
BASELINE_S = 60.0  # the lowest median of how many seconds of intervals is the baseline
_POLL_S = 0.1  # how often a waiting call looks at its cancel flag


class Limiter:
    """One job's requests in flight to one endpoint, and their limit.

    `request(grant)` asks for a slot without blocking: `grant()` is called (now, or later by the
    thread that frees a slot) once it is the caller's; first come, first served. `acquire`
    does the same and waits. Thread-safe."""

    def __init__(self, ceiling: int, adaptive: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = 1.0 if adaptive else float(ceiling)
        self._slow_start = adaptive
        self._in_flight = 0
        self._granted: set[int] = set()
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._tickets = itertools.count()
        # Since the last observation:
        self._latencies: list[float] = []
        self._overloads = 0
        self._full = False  # the limit was reached in this interval (all slots taken, or a call waited)
        self._medians: deque[tuple[float, float]] = deque()  # (time, median latency) of past intervals
        self._round_trip_s = 0.0  # the latest interval's median latency
        self._decreased_at = -math.inf

    @property
    def limit(self) -> int:
        return max(1, min(self.ceiling, math.floor(self._limit)))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def request(self, grant: Callable[[], None]) -> int:
        """A ticket; `grant()` is called once its slot is free."""
        with self._lock:
            ticket = next(self._tickets)
            if self._in_flight < self.limit and not self._waiting:
                self._take(ticket)
            else:
                self._full = True
                self._waiting.append((ticket, grant))
                return ticket
        grant()
        return ticket

    def withdraw(self, ticket: int) -> None:
        """The caller no longer wants the slot: taken out of the queue, or given back if granted."""
        with self._lock:
            for index, (waiting, _) in enumerate(self._waiting):
                if waiting == ticket:
                    del self._waiting[index]
                    return
        self.release(ticket)

    def release(self, ticket: int, latency_s: float | None = None, overloaded: bool = False) -> None:
        """Give a slot back: `latency_s` of a call that succeeded, or `overloaded` for one that
        timed out or was refused as overloaded (neither: a call that failed otherwise)."""
        with self._lock:
            if ticket not in self._granted:
                return  # given back already (e.g. withdrawn, or its worker died)
            self._granted.discard(ticket)
            self._in_flight -= 1
            if latency_s is not None:
                self._latencies.append(latency_s)
                if self._slow_start and self._full:
                    self._limit = min(self.ceiling, self._limit + 1)
            if overloaded:
                self._overloads += 1
            grants = self._admit()
        for grant in grants:
            grant()

    def acquire(self, cancel: threading.Event) -> int:
        """Wait for a slot (raises Cancelled once `cancel` is set); returns its ticket."""
        granted = threading.Event()
        ticket = self.request(granted.set)
        while not granted.wait(_POLL_S):
            if cancel.is_set():
                self.withdraw(ticket)
                raise Cancelled()
        return ticket

    def observe(self, waiting: float | None, running: float | None = None) -> dict[str, object]:
        """Decide the limit for the next interval from the server's waiting and running requests
        (waiting None: it has no metrics, its latency decides; running None: any wait is too
        long); returns what the job did in the interval, for the sampler's row."""
        with self._lock:
            now = self._clock()
            latencies, self._latencies = self._latencies, []
            overloads, self._overloads = self._overloads, 0
            full = self._full
            congested = overloads > 0
            if waiting is not None:
                congested = congested or waiting > QUEUE_TOLERANCE * (running or 0)
            if latencies:
                interval_median = self._round_trip_s = median(latencies)
                baseline = min((m for _, m in self._medians), default=None)
                if waiting is None and baseline is not None:
                    congested = congested or (
                        interval_median > LATENCY_TOLERANCE * baseline and interval_median - baseline > LATENCY_SLACK_S
                    )
                self._medians.append((now, interval_median))
                while self._medians and self._medians[0][0] < now - BASELINE_S:
                    self._medians.popleft()
            if self.adaptive:
                if congested:
                    # Once per round trip: the calls sent before a cut must end before it shows.
                    if now - self._decreased_at >= self._round_trip_s:
                        self._limit = max(1.0, self._limit * DECREASE)
                        self._decreased_at = now
                    self._slow_start = False
                elif full and not self._slow_start:
                    self._limit = min(float(self.ceiling), self._limit + 1)
            self._full = self._in_flight >= self.limit or bool(self._waiting)  # the next interval starts so
            row: dict[str, object] = {
                "limit": self.limit,
                "in_flight": self._in_flight,
                "queued": len(self._waiting),  # calls of this job waiting for a slot
                "calls": len(latencies),
                "latencies_s": [round(latency, 3) for latency in latencies],
                "overloads": overloads,
            }
            grants = self._admit()
        for grant in grants:
            grant()
        return row

    def _take(self, ticket: int) -> None:
        self._in_flight += 1
        self._granted.add(ticket)
        if self._in_flight >= self.limit:
            self._full = True

    def _admit(self) -> list[Callable[[], None]]:
        """Grant waiting tickets while there is room (the caller holds the lock; it calls the grants after)."""
        grants = []
        while self._waiting and self._in_flight < self.limit:
            ticket, grant = self._waiting.popleft()
            self._take(ticket)
            grants.append(grant)
        return grants


class Slots(Protocol):
    """What a model call needs of the limit: a slot before it is sent, given back after."""

    def acquire(self, cancel: threading.Event) -> int: ...

    def release(self, ticket: int, latency_s: float | None = None, overloaded: bool = False) -> None: ...


# Where an episode's model calls take their slots: the base URL of a server → its slots (None: no
# limit). The run loop hands one to every episode it runs: the job's own `JobLimits.slots` in
# the job's process, or, in a worker process, slots asked of the job over the worker's pipe.
SlotsFor = Callable[[str], "Slots | None"]


class JobLimits:
    """A job's limiters, one per endpoint (by base URL); `slots` is what the job's episodes take
    their slots from in its own process (worker processes ask it through `RemoteSlots`)."""

    def __init__(self, max_concurrency: int, adaptive: bool) -> None:
        self.max_concurrency = max_concurrency
        self.adaptive = adaptive
        self.limiters: dict[str, Limiter] = {}

    def add(self, base_url: str, max_in_flight: int | None) -> Limiter:
        """The limiter of an endpoint (one per base URL, however many roles it serves: the
        lowest of their caps holds)."""
        ceiling = min(self.max_concurrency, max_in_flight or self.max_concurrency)
        limiter = self.limiters.get(base_url)
        if limiter is None:
            limiter = self.limiters[base_url] = Limiter(ceiling, self.adaptive)
        limiter.ceiling = min(limiter.ceiling, ceiling)
        if not self.adaptive:
            limiter._limit = float(limiter.ceiling)
        return limiter

    def slots(self, base_url: str) -> Slots | None:
        """The slots of the server at `base_url` (None: a server the job set no limit for)."""
        return self.limiters.get(base_url)


class RemoteSlots:
    """A worker process's slots of one endpoint, asked of the job over the worker's pipe:
    `send(("slot", id, base_url))`, then the job's `("granted", id)` is handed to `granted`;
    `("free", id, latency_s, overloaded)` gives it back, `("withdraw", id)` gives up waiting."""

    _ids = itertools.count()
    _lock = threading.Lock()
    _waiting: dict[int, threading.Event] = {}

    def __init__(self, base_url: str, send: Callable[[object], None]) -> None:
        self.base_url = base_url
        self._send = send

    def acquire(self, cancel: threading.Event) -> int:
        granted = threading.Event()
        with self._lock:
            ticket = next(self._ids)
            self._waiting[ticket] = granted
        self._send(("slot", ticket, self.base_url))
        while not granted.wait(_POLL_S):
            if cancel.is_set():
                with self._lock:
                    self._waiting.pop(ticket, None)
                self._send(("withdraw", ticket))
                raise Cancelled()
        return ticket

    def release(self, ticket: int, latency_s: float | None = None, overloaded: bool = False) -> None:
        self._send(("free", ticket, latency_s, overloaded))

    @classmethod
    def granted(cls, ticket: int) -> None:
        """The job granted `ticket` (a grant for a call that gave up waiting is ignored: the job
        gives that slot back when it reads the withdrawal)."""
        with cls._lock:
            event = cls._waiting.pop(ticket, None)
        if event is not None:
            event.set()
