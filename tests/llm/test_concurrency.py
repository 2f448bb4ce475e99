"""llm/concurrency.py: a job's in-flight limit to a server. The limiter's rules on their own (slow
start, additive increase, multiplicative decrease, first come first served); then jobs made of
real model calls (`ChatModel`) through their limiter and their sampler of `/metrics`, against a
capacity-limited oracle: one lowers its limit when the server is saturated and raises it when
the load goes, two converge to similar shares, and without `/metrics` latency decides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Self

import httpx
import pytest

from tau_exp.config import ModelConfig, RetryConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import Cancelled
from tau_exp.files import read_json_lines
from tau_exp.llm.chat import ChatModel
from tau_exp.llm.concurrency import Limiter
from tau_exp.llm.settings import CallSettings, Retry
from tau_exp.llm.tags import EpisodeTag
from tau_exp.servers import provide
from tau_exp.servers.load import MetricsSampler

OPENING = [{"role": "assistant", "content": "Hi! How can I help you today?"}, {"role": "user", "content": "hello"}]


def test_the_limit_doubles_per_round_trip_until_the_server_is_congested_then_grows_by_one():
    """Slow start: +1 per call that ended while the limit was full; a congested interval halves
    the limit and ends slow start; after it, +1 per uncongested interval in which the limit was used."""
    now = [0.0]
    limiter = Limiter(ceiling=16, adaptive=True, clock=lambda: now[0])
    assert limiter.limit == 1
    for expected in (2, 4, 8):
        tickets = [limiter.request(lambda: None) for _ in range(16)]
        granted = tickets[: limiter.limit]
        for ticket in tickets[limiter.limit :]:
            limiter.withdraw(ticket)
        for ticket in granted:
            limiter.release(ticket, latency_s=0.1)
        assert limiter.limit == expected
    now[0] += 1
    limiter.observe(waiting=3)
    assert limiter.limit == 4
    now[0] += 1
    held = [limiter.request(lambda: None) for _ in range(4)]  # the limit used in full
    limiter.observe(waiting=0)
    assert limiter.limit == 5
    for ticket in held:
        limiter.release(ticket, latency_s=0.1)
    assert limiter.limit == 5  # no more doubling after slow start
    now[0] += 1
    limiter.observe(waiting=0)
    assert limiter.limit == 5  # nothing used the limit: no reason to raise it


def test_a_queue_shorter_than_half_the_running_batch_feeds_the_server_and_a_longer_one_is_congestion():
    """Each running request that ends admits a waiting one: 2 waiting behind 4 running wait about
    half a service time, which keeps the server busy; 3 behind 4 are a queue that grows latency."""
    now = [0.0]
    limiter = Limiter(ceiling=16, adaptive=True, clock=lambda: now[0])
    limiter.observe(waiting=0)  # ends nothing: slow start ends only with a congestion signal
    held = [limiter.request(lambda: None) for _ in range(limiter.limit)]
    for ticket in held:
        limiter.release(ticket, latency_s=0.1)  # slow start: 1 → 2
    now[0] += 1
    limiter.observe(waiting=3, running=4)
    assert limiter.limit == 1  # congested: halved, slow start over
    now[0] += 1
    held = [limiter.request(lambda: None) for _ in range(1)]
    limiter.observe(waiting=2, running=4)
    assert limiter.limit == 2  # not congested, and the limit was used: +1
    now[0] += 1
    limiter.observe(waiting=1, running=None)  # a server that does not say what runs: any wait counts
    assert limiter.limit == 1


def test_the_limit_stays_between_one_and_the_ceiling_and_fixed_never_moves():
    now = [0.0]
    limiter = Limiter(ceiling=3, adaptive=True, clock=lambda: now[0])
    for _ in range(5):
        now[0] += 1
        limiter.observe(waiting=10)
    assert limiter.limit == 1
    for _ in range(10):
        now[0] += 1
        held = [limiter.request(lambda: None) for _ in range(limiter.limit)]
        limiter.observe(waiting=0)
        for ticket in held:
            limiter.release(ticket)
    assert limiter.limit == 3
    fixed = Limiter(ceiling=8, adaptive=False)
    fixed.observe(waiting=50)
    assert fixed.limit == 8


def test_calls_wait_first_come_first_served_and_a_cancelled_wait_gives_its_place_up():
    limiter = Limiter(ceiling=1, adaptive=False)
    order: list[str] = []
    first = limiter.request(lambda: order.append("first"))
    second = limiter.request(lambda: order.append("second"))
    third = limiter.request(lambda: order.append("third"))
    limiter.withdraw(second)  # gave up waiting
    limiter.release(first, latency_s=0.1)
    assert order == ["first", "third"] and limiter.in_flight == 1
    limiter.release(third)
    cancel = threading.Event()
    held = limiter.acquire(cancel)
    cancel.set()
    with pytest.raises(Cancelled):
        limiter.acquire(cancel)
    limiter.release(held)
    assert limiter.in_flight == 0


def test_a_call_that_times_out_is_a_congestion_signal():
    now = [0.0]
    limiter = Limiter(ceiling=8, adaptive=True, clock=lambda: now[0])
    limiter._limit = 8.0
    limiter.release(limiter.request(lambda: None), overloaded=True)
    now[0] += 1
    assert limiter.observe(waiting=None)["overloads"] == 1 and limiter.limit == 4


# Jobs of real model calls against a capacity-limited oracle.


@pytest.fixture(scope="module")
def capacity_oracle(oracle_model, tmp_path_factory) -> Iterator:
    """`capacity_oracle(metrics=True)`: an oracle serving 4 requests at once for 0.1 s each."""

    @contextmanager
    def start(metrics: bool = True) -> Iterator[Endpoint]:
        model: ModelConfig = oracle_model()
        model.server.oracle.capacity, model.server.oracle.service_s = 4, 0.1
        model.server.oracle.metrics = metrics
        with provide("assistant", model, tmp_path_factory.mktemp("capacity_oracle")) as endpoint:
            yield endpoint

    return start


class Callers:
    """Threads that call a server until the block ends (then stopped and joined)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


class Job(Callers):
    """`callers` conversations that call the model without pause, through this job's limiter
    and its sampler of the server's /metrics (every 0.1 s), as a job's episodes do."""

    def __init__(self, endpoint: Endpoint, model: ModelConfig, callers: int, rows: Path) -> None:
        super().__init__()
        self.limiter = Limiter(ceiling=callers, adaptive=True)
        self.sampler = MetricsSampler(endpoint, [rows], 0.1, self.limiter)
        self.rows = rows
        self.calls = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._call, args=(endpoint, model, f"{id(self)}-{n}"), daemon=True)
            for n in range(callers)
        ]

    def _call(self, endpoint: Endpoint, model: ModelConfig, name: str) -> None:
        retry = Retry.of(RetryConfig())
        tag = EpisodeTag("retail", "5", 0, "assistant")
        chat = ChatModel(endpoint, CallSettings.of(model), retry, tag, self.stop, self.limiter)
        while not self.stop.is_set():
            try:
                chat.complete(OPENING)
            except Cancelled:
                return
            with self._lock:
                self.calls += 1

    def __enter__(self) -> Self:
        self.sampler.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__()
        self.sampler.__exit__()

    def limits(self) -> list[int]:
        return [row["limit"] for row in read_json_lines(self.rows)]


class Flood(Callers):
    """Another client that keeps `n` requests in flight and never adapts."""

    def __init__(self, endpoint: Endpoint, n: int) -> None:
        super().__init__()
        tag = EpisodeTag("retail", "5", 0, "assistant")
        headers = {**tag.headers(), "Authorization": f"Bearer {endpoint.api_key}"}
        body = {"model": endpoint.model, "messages": OPENING}

        def flood() -> None:
            with httpx.Client(timeout=60) as client:
                while not self.stop.is_set():
                    client.post(f"{endpoint.base_url}/chat/completions", json=body, headers=headers)

        self._threads = [threading.Thread(target=flood, daemon=True) for _ in range(n)]


@pytest.mark.slow  # a server and real calls for tens of seconds
def test_a_job_on_a_saturated_server_lowers_its_limit_and_raises_it_when_the_load_goes(
    capacity_oracle, oracle_model, tmp_path, wait_until
):
    """Another client keeps 16 requests at a server of capacity 4: the job's limit falls to 1.
    Once that client stops, the limit grows back to the server's capacity at least."""
    with capacity_oracle() as endpoint, Job(endpoint, oracle_model(), 12, tmp_path / "rows.jsonl") as job:
        with Flood(endpoint, 16):
            wait_until(lambda: job.limits() and job.limits()[-1] == 1, 60, "the job's limit falling to 1")
            low = len(job.limits())
        wait_until(lambda: max(job.limits()[low:], default=0) >= 4, 60, "the job's limit growing back to 4")
    rows = read_json_lines(tmp_path / "rows.jsonl")
    assert all("waiting" in row for row in rows) and job.sampler.has_metrics


@pytest.mark.slow  # a server and real calls for tens of seconds
def test_two_jobs_on_one_server_converge_to_similar_shares(capacity_oracle, oracle_model, tmp_path, wait_until):
    """The first job has the server to itself, then a second one starts: once the second has
    made 100 calls (its slow start and the first job's cut are over, even on a busy machine), the
    next 400 calls split between them no worse than 40:60."""
    with ExitStack() as stack:
        endpoint = stack.enter_context(capacity_oracle())
        first = stack.enter_context(Job(endpoint, oracle_model(), 12, tmp_path / "first.jsonl"))
        wait_until(lambda: first.calls >= 50, 60, "the first job's first 50 calls")
        second = stack.enter_context(Job(endpoint, oracle_model(), 12, tmp_path / "second.jsonl"))
        wait_until(lambda: second.calls >= 100, 60, "the second job's first 100 calls")
        start = (first.calls, second.calls)
        wait_until(lambda: first.calls + second.calls - sum(start) >= 400, 120, "400 more calls")
        shares = (first.calls - start[0], second.calls - start[1])
    assert min(shares) / sum(shares) >= 0.4, shares


@pytest.mark.slow  # a server and real calls for tens of seconds
def test_without_metrics_the_latency_decides(capacity_oracle, oracle_model, tmp_path, wait_until):
    """A server without /metrics: the limit grows until the calls take more than twice as long
    as the fastest intervals', then falls."""
    with capacity_oracle(metrics=False) as endpoint, Job(endpoint, oracle_model(), 16, tmp_path / "rows.jsonl") as job:

        def fell() -> bool:
            limits = job.limits()
            peak = limits.index(max(limits)) if limits else 0
            return bool(limits) and max(limits) > 4 and min(limits[peak:]) < max(limits)

        wait_until(fell, 60, "the limit rising beyond the capacity, then falling")
    rows = read_json_lines(tmp_path / "rows.jsonl")
    assert job.sampler.has_metrics is False and not any("waiting" in row for row in rows)
