"""The oracle as a server with a capacity: `server.oracle.capacity` requests served at once,
each for `service_s` + `service_s_per_token` × its generated tokens, the rest waiting in a
queue, first come first served; and a Prometheus `/metrics` with vLLM's names, types and
labels for what vLLM's scheduler reports (`tau_exp.servers.load` lists them).

What is simulated, and how:
- running, waiting: the requests in service and in the queue.
- KV-cache usage: the share of the capacity in use (running ÷ capacity; 0 without a capacity).
- prefix cache: a prompt's leading messages that the previous request of the same conversation
  side (episode tag and role) also sent count as hits, their tokens as a chars/4 estimate, as
  the completion's token counts are.
- A request whose client goes away (a timeout) is aborted, as vLLM aborts it: taken out of the
  queue, or its service cut short.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict, deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tau_exp.servers.load import COUNTERS, GAUGES, LABELS, QUEUE_TIME_HISTOGRAM, SUCCESS_COUNTER

# vLLM's buckets for its queue-time histogram.
QUEUE_TIME_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)
_CONVERSATIONS = 10_000  # prefix-cache entries kept (least recently used dropped)


class ServerLoad:
    """The queue, the service, and the metrics of one oracle server."""

    def __init__(self, model: str, capacity: int | None, service_s: float, service_s_per_token: float) -> None:
        self.capacity = capacity
        self.service_s = service_s
        self.service_s_per_token = service_s_per_token
        self.running = 0
        self._queue: deque[asyncio.Future] = deque()
        self._prefixes: OrderedDict[str, list[tuple[str, int]]] = OrderedDict()
        self.registry = CollectorRegistry()
        labels = {"engine": "0", "model_name": model}
        self._gauges = {
            name: Gauge(name, help_, LABELS, registry=self.registry).labels(**labels) for name, help_ in GAUGES.items()
        }
        self._counters = {
            name: Counter(name, help_, LABELS, registry=self.registry).labels(**labels)
            for name, help_ in COUNTERS.items()
        }
        success = Counter(
            SUCCESS_COUNTER,
            "Count of successfully processed requests.",
            [*LABELS, "finished_reason"],
            registry=self.registry,
        )
        self._success = {
            reason: success.labels(**labels, finished_reason=reason) for reason in ("stop", "length", "abort")
        }
        self._queue_time = Histogram(
            QUEUE_TIME_HISTOGRAM,
            "Histogram of time spent in WAITING phase for request.",
            LABELS,
            buckets=QUEUE_TIME_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self._update()

    @property
    def waiting(self) -> int:
        return sum(not future.done() for future in self._queue)

    async def serve(self, completion_tokens: int) -> None:
        """Wait for a place, then hold it for the service time (cancelled: the request is aborted)."""
        queued = time.perf_counter()
        await self._enter()
        self._queue_time.observe(time.perf_counter() - queued)
        try:
            seconds = self.service_s + self.service_s_per_token * completion_tokens
            if seconds:
                await asyncio.sleep(seconds)
        finally:
            self._leave()

    def aborted(self) -> None:
        self._success["abort"].inc()

    def served(self, request: dict[str, Any], conversation: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Count a finished request: its tokens, and its prompt's prefix-cache hits."""
        self._counters["vllm:prompt_tokens"].inc(prompt_tokens)
        self._counters["vllm:generation_tokens"].inc(completion_tokens)
        queries, hits = self._prefix_cache(conversation, request.get("messages", []))
        self._counters["vllm:prefix_cache_queries"].inc(queries)
        self._counters["vllm:prefix_cache_hits"].inc(hits)
        self._success["stop"].inc()

    def _prefix_cache(self, conversation: str, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """(prompt tokens looked up, tokens of the leading messages that this conversation
        side's previous prompt began with)."""
        current = [
            (hashlib.sha1(json.dumps(m, sort_keys=True, default=str).encode()).hexdigest(), _tokens(m))
            for m in messages
        ]
        previous = self._prefixes.pop(conversation, [])
        hits = 0
        for (digest, tokens), (before, _) in zip(current, previous, strict=False):
            if digest != before:
                break
            hits += tokens
        self._prefixes[conversation] = current
        while len(self._prefixes) > _CONVERSATIONS:
            self._prefixes.popitem(last=False)
        return sum(tokens for _, tokens in current), hits

    async def _enter(self) -> None:
        if self.capacity is None or (self.running < self.capacity and not self.waiting):
            self.running += 1
            self._update()
            return
        place = asyncio.get_running_loop().create_future()
        self._queue.append(place)
        self._update()
        try:
            await place  # the request that left gave us its place (running unchanged)
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self._leave()  # granted just as it was aborted: pass the place on
            self._discard(place)
            raise
        self._discard(place)

    def _leave(self) -> None:
        while self._queue:
            place = self._queue.popleft()
            if not place.done():
                place.set_result(None)  # its place passes on: running stays the same
                self._update()
                return
        self.running -= 1
        self._update()

    def _discard(self, place: asyncio.Future) -> None:
        try:
            self._queue.remove(place)
        except ValueError:
            pass
        self._update()

    def _update(self) -> None:
        self._gauges["vllm:num_requests_running"].set(self.running)
        self._gauges["vllm:num_requests_waiting"].set(self.waiting)
        self._gauges["vllm:kv_cache_usage_perc"].set(self.running / self.capacity if self.capacity else 0.0)


def _tokens(message: dict[str, Any]) -> int:
    return len(str(message.get("content") or "")) // 4 + 1
