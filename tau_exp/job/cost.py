"""GPU-hours: what a job held on the cluster — its own Slurm allocation's accelerators, and its
share of each shared server job it used — and what it got for them (tokens, scored pairs).

Each invocation of a job (the first, a resume, a requeue) appends one `CostSpan` to
`<job dir>/cost.jsonl` when it ends (`CostMeter`):

- **its own allocation**: the generic resources (`gres/gpu`, `gres/hpu`, …) Slurm allocated to
  the job, from the allocation's start (Slurm's StartTime: the job's queue wait costs nothing,
  its start-up does) to the invocation's end. A vLLM server the job starts itself (the `vllm`
  kind) runs on these. Outside Slurm nothing is counted: a workstation's GPUs are not allocated.
- **each shared server job** (the `slurm` kind) it used: that job's generic resources over the
  span from when it answered the job, of which this job is charged the fraction of the tokens the server processed in
  the span that were this job's own (its results' usage ÷ the difference of the server's
  /metrics token counters); the whole span for a server without /metrics. A shared server's
  idle minutes with no job attached (before its idle timeout stops it) are in no job's cost.

`summarize` adds a job's spans up for metrics.json (`records.Cost`). Accounting (sacct) is not
needed: scontrol knows a job while it runs, and each span is measured while it does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
from pydantic import BaseModel, ValidationError

from tau_exp import slurm_client
from tau_exp.endpoint import Endpoint
from tau_exp.errors import SlurmError
from tau_exp.files import read_json_lines
from tau_exp.job.checkpoint import ResultStore
from tau_exp.records import Cost, EpisodeResult, EpisodeStatus
from tau_exp.servers.load import read_sample

log = logging.getLogger(__name__)
HOUR_S = 3600.0


class SharedServerUse(BaseModel):
    """One shared server job over one span of a job, and the part of it charged to the job."""

    roles: list[str]  # the job's roles it served (both, when one server serves both)
    slurm_job_id: str
    start: float  # unix time: when it answered this job (the span ends with the job's)
    gres: dict[str, int]  # what its allocation holds, e.g. {"gpu": 8}
    server_tokens: float | None  # prompt + generated tokens it processed in the span (None: no /metrics)
    job_tokens: int  # this job's own in the span (its results' usage)
    share: float  # the fraction charged to this job: job ÷ server tokens, at most 1; 1 without /metrics


class CostSpan(BaseModel):
    """One invocation of a job: when it held what."""

    start: float  # unix time: the Slurm allocation's start, or the invocation's outside Slurm
    end: float
    slurm_job_id: str | None = None
    gres: dict[str, int] = {}  # the job's own allocation
    shared: list[SharedServerUse] = []

    def hours(self) -> float:
        return max(0.0, self.end - self.start) / HOUR_S


class CostMeter:
    """Measure one invocation's span, and append it to `path` on exit (a context manager).

    `endpoints` maps role → Endpoint; those served by a shared server job carry its Slurm job id."""

    def __init__(self, path: Path, endpoints: dict[str, Endpoint], store: ResultStore) -> None:
        self.path = path
        self.store = store
        self.started = time.time()
        self.slurm_job_id = slurm_client.current_job_id() or None
        self.allocation = _allocation(self.slurm_job_id) if self.slurm_job_id else None
        # One entry per shared server job, with the roles it serves, and its counters at the start.
        self.shared: dict[str, tuple[Endpoint, list[str]]] = {}
        for role, endpoint in endpoints.items():
            if endpoint.slurm_job_id is not None:
                self.shared.setdefault(endpoint.slurm_job_id, (endpoint, []))[1].append(role)
        self.tokens_at_start = {job_id: _tokens_served(endpoint) for job_id, (endpoint, _) in self.shared.items()}
        self.results_before = {(r.key, r.started_at) for r in store.results()}  # this span's are the others

    def __enter__(self) -> CostMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            span = self.span(time.time())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as file:
                file.write(span.model_dump_json() + "\n")
        except Exception:  # the cost record must never hide how the job ended
            log.exception("could not record the job's GPU-hours in %s", self.path)

    def span(self, end: float) -> CostSpan:
        start = self.started
        if self.allocation is not None and self.allocation.start is not None:
            start = min(start, self.allocation.start)
        in_span = [r for r in self.store.results() if (r.key, r.started_at) not in self.results_before]
        shared = []
        for job_id, (endpoint, roles) in self.shared.items():
            before, after = self.tokens_at_start[job_id], _tokens_served(endpoint)
            job_tokens = sum(
                usage.prompt_tokens + usage.completion_tokens
                for result in in_span
                for role, usage in result.usage.items()
                if role in roles
            )
            server_tokens = None if before is None or after is None or after < before else after - before
            share = 1.0 if server_tokens is None else min(1.0, job_tokens / server_tokens) if server_tokens else 0.0
            server = _allocation(job_id)
            shared.append(
                SharedServerUse(
                    roles=roles,
                    slurm_job_id=job_id,
                    start=self.started,
                    gres=server.gres if server else {},
                    server_tokens=server_tokens,
                    job_tokens=job_tokens,
                    share=share,
                )
            )
        return CostSpan(
            start=start,
            end=end,
            slurm_job_id=self.slurm_job_id,
            gres=self.allocation.gres if self.allocation else {},
            shared=shared,
        )


def read_spans(path: Path) -> list[CostSpan]:
    """The spans of `cost.jsonl` (a torn last line, of a job killed mid-write, left out)."""
    spans = []
    for row in read_json_lines(path):
        try:
            spans.append(CostSpan.model_validate(row))
        except ValidationError:
            continue
    return spans


def summarize(spans: list[CostSpan], results: Iterable[EpisodeResult]) -> Cost | None:
    """A job's GPU-hours over all its spans, per generic resource, with tokens per GPU-hour and
    GPU-hours per scored pair over all its results; None when no span was recorded."""
    if not spans:
        return None
    own: dict[str, float] = {}
    shared: dict[str, float] = {}
    for span in spans:
        for name, count in span.gres.items():
            own[name] = own.get(name, 0.0) + count * span.hours()
        for server in span.shared:
            for name, count in server.gres.items():
                hours = max(0.0, span.end - server.start) / HOUR_S
                shared[name] = shared.get(name, 0.0) + count * hours * server.share
    results = list(results)
    tokens = sum(u.prompt_tokens + u.completion_tokens for r in results for u in r.usage.values())
    scored = sum(r.status == EpisodeStatus.scored for r in results)
    total = {name: own.get(name, 0.0) + shared.get(name, 0.0) for name in sorted(own.keys() | shared.keys())}
    # The headline figure counts accelerators: GPUs (or Gaudi's HPUs), whichever the cluster names.
    accelerator_hours = sum(hours for name, hours in total.items() if name in slurm_client.ACCELERATORS)
    return Cost(
        hours=sum(span.hours() for span in spans),
        own_gres_hours=own,
        shared_gres_hours=shared,
        gpu_hours=accelerator_hours,
        tokens=tokens,
        scored_pairs=scored,
        tokens_per_gpu_hour=tokens / accelerator_hours if accelerator_hours else None,
        gpu_hours_per_scored_pair=accelerator_hours / scored if scored and accelerator_hours else None,
        shared_without_metrics=any(server.server_tokens is None for span in spans for server in span.shared),
    )


def _allocation(job_id: str) -> slurm_client.Allocation | None:
    try:
        return slurm_client.allocation(job_id)
    except SlurmError as error:  # cost is a report, never a reason to fail the job
        log.warning("could not read Slurm job %s's allocation: %s", job_id, error)
        return None


def _tokens_served(endpoint: Endpoint) -> float | None:
    with httpx.Client(timeout=5.0) as client:
        sample = read_sample(client, endpoint)
    return None if sample is None else sample.tokens
