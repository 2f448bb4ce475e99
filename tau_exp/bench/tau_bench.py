"""The tau-bench v1 adapter (`bench=tau_bench`): the original tau-bench package's environments,
splits, agent strategies, user strategies and reward, run by tau_exp's servers, run loop,
metrics and tracking.

Thin on purpose: v1 runs each episode itself — `get_env(...)` builds the environment with its
user simulator, the strategy's `agent.solve(env, task_index)` talks and returns v1's own reward.
What this adapter adds is where the model calls go. v1's agents and user simulators call
`litellm.completion` with a model name only (the old workflow exported USER_MODEL_API_BASE and
patched run.py); here the module-level `completion` of v1's agent and user modules is routed,
per episode and thread, to the episode's `ChatModel`: its endpoint and key, retries, headers, and
infra errors that are recorded as such instead of as reward 0 (v1's run.py scored every
exception 0).

Task ids are positions in v1's split ("0", "1", ...), as in v1's results files.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tau_exp.agents.examples import load_examples  # v1's few-shot files are tau_exp's format
from tau_exp.bench import EpisodeSpec, fingerprint_of
from tau_exp.bench.episode import Episode
from tau_exp.config import BenchConfig, ExperimentConfig
from tau_exp.errors import Cancelled, ConfigError, ModelFault
from tau_exp.llm.chat import ChatModel
from tau_exp.llm.reasoning import strip_reasoning
from tau_exp.records import EpisodeResult, EpisodeStatus, ErrorInfo, TaskData

SPLITS = {"retail": ("train", "test", "dev"), "airline": ("test",)}
AGENT_STRATEGIES = {"tool_calling": "tool-calling", "act": "act", "react": "react", "few_shot": "few-shot"}
USER_STRATEGIES = ("llm", "react", "verify", "reflection")  # v1's `human` needs a person at the terminal
INSTALL_HINT = (
    "install a checkout of it (git clone https://github.com/sierra-research/tau-bench && "
    "pip install -e tau-bench), or point bench.path at the checkout"
)
# What v1 itself raises on a model's malformed output (tool-call arguments that are not JSON, a
# ReAct action without name/arguments): the model's mistake, scored 0 as v1 scores it.
MODEL_MISTAKES = (json.JSONDecodeError, AssertionError, ValidationError)


def prepare(bench: BenchConfig) -> None:
    """Make `tau_bench` importable (from `bench.path`, a checkout, when given) or raise ConfigError."""
    path = bench.path
    if path is not None:
        checkout = Path(path).expanduser().resolve()
        if not (checkout / "tau_bench" / "__init__.py").is_file():
            raise ConfigError(
                f"bench.path={path} is not a tau-bench checkout (no tau_bench/__init__.py in it): {INSTALL_HINT}"
            )
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
    try:
        importlib.import_module("tau_bench.envs")
    except ImportError as error:
        raise ConfigError(
            f"bench=tau_bench needs the original tau-bench package, which cannot be imported here "
            f"({error}): {INSTALL_HINT}"
        ) from None


def domains() -> list[str]:
    return list(SPLITS)


def validate(cfg: ExperimentConfig) -> None:
    """The checks of `bench=tau_bench`, before anything starts."""
    prepare(cfg.bench)
    if cfg.env.name not in SPLITS:
        tau2_only = " (it is tau2's: bench=tau2)" if cfg.env.name.startswith("telecom") else ""
        raise ConfigError(
            f"env.name={cfg.env.name!r} is not a tau-bench v1 environment{tau2_only}; choose retail or airline"
        )
    if cfg.tasks.split.value not in SPLITS[cfg.env.name]:
        raise ConfigError(
            f"tasks.split={cfg.tasks.split.value} does not exist in tau-bench v1's {cfg.env.name}; "
            f"choose {' or '.join(SPLITS[cfg.env.name])}"
        )
    if cfg.agent.name not in AGENT_STRATEGIES:
        raise ConfigError(
            f"agent={cfg.agent.name} has no tau-bench v1 strategy; choose one of {', '.join(AGENT_STRATEGIES)}"
        )
    missing = [name for name in _COMPLETION_MODULES if not hasattr(importlib.import_module(name), "completion")]
    if missing:
        raise ConfigError(
            f"this tau-bench does not call litellm's `completion` in {', '.join(missing)} as v1 does, "
            "so tau_exp cannot route its model calls: use sierra-research/tau-bench's main branch"
        )
    if cfg.user.strategy not in USER_STRATEGIES:
        raise ConfigError(
            f"user.strategy={cfg.user.strategy} is not a tau-bench v1 user strategy here; choose one of "
            f"{', '.join(USER_STRATEGIES)}"
        )


@dataclass(frozen=True)
class IndexedTask:
    """A v1 task and its position in the split (v1 tasks have no other id)."""

    id: str
    index: int
    task: Any  # tau_bench.types.Task


def load_tasks(domain: str, split: str) -> list[IndexedTask]:
    """The tasks of a v1 split, in v1's order."""
    from tau_bench.envs import get_env

    # The `human` user simulator calls no model when the environment is built.
    env = get_env(domain, user_strategy="human", user_model="none", task_split=split, task_index=0)
    return [IndexedTask(str(index), index, task) for index, task in enumerate(env.tasks)]


def fingerprint(domain: str, split: str, tasks: list | None = None) -> TaskData:
    """The data a job of this v1 split runs, as v1 loads it: the split's tasks in v1's order,
    the environment's data (v1's database) and its wiki (the policy) and rules (`tasks`, the
    split's tasks if loaded already, is not used: v1's environment loads them anyway). The version is
    that of an installed `tau_bench` distribution (None for a checkout given as bench.path that
    was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from tau_bench.envs import get_env

    env = get_env(domain, user_strategy="human", user_model="none", task_split=split, task_index=0)
    data = {
        "tasks": [task.model_dump(mode="json") if hasattr(task, "model_dump") else task for task in env.tasks],
        "data": env.data,
        "wiki": env.wiki,
        "rules": list(getattr(env, "rules", None) or []),
    }
    try:
        installed: str | None = version("tau_bench")
    except PackageNotFoundError:
        installed = None
    return TaskData(package="tau-bench", version=installed, fingerprint=fingerprint_of(data))


def run_episode(spec: EpisodeSpec, cancel: threading.Event | None = None) -> EpisodeResult:
    """Run one v1 episode (v1's environment, agent, user simulator and reward). Infra failures
    and unexpected exceptions become records with an error status; `Cancelled` propagates."""
    from tau_bench.envs import get_env

    _route_completions()
    task: IndexedTask = spec.task
    episode = Episode(spec, task.id, cancel)
    _episode.models = episode.models
    _episode.conversation = []
    # v1 seeds one global random source per run (its few-shot examples depend on the order the
    # episodes ran in); here each (task, trial) draws from its own seed: the same prompts every run.
    _episode.random = random.Random(spec.seed)
    _episode.user_purpose = "react" if spec.user_settings.strategy == "react" else "reply"
    try:
        try:
            env = get_env(
                spec.domain,
                user_strategy=spec.user_settings.strategy,
                user_model=spec.user.model,
                task_split=spec.split,
                user_provider=spec.user.provider,
                task_index=task.index,
            )
            agent = _agent(spec, env)
        except Cancelled:
            raise
        except Exception as error:  # v1 could not set the episode up: not the model's doing
            return episode.failed(error)
        solved = agent.solve(env, task_index=task.index, max_num_steps=spec.max_steps)
    except Cancelled:
        raise
    except (ModelFault, *MODEL_MISTAKES) as error:
        role = error.role if isinstance(error, ModelFault) else "assistant"
        cause = f"{type(error).__name__}: {str(error)[:2000]}"
        return episode.record(
            EpisodeStatus.scored,
            reward=0.0,
            termination_reason=f"{'agent' if role == 'assistant' else 'user'}_error",
            error=ErrorInfo(type=type(error).__name__, message=str(error)[:2000]),
            # What the agent said up to the failure: the last conversation v1's agent sent, and
            # the reply it could not use.
            messages=_jsonable(_episode.conversation),
            ended_by=f"v1 raised {cause}" + (f" on the {role}'s last reply" if _episode.conversation else ""),
        )
    except Exception as error:
        return episode.failed(error)
    finally:
        _episode.models = None
    return episode.record(
        EpisodeStatus.scored,
        reward=solved.reward,
        termination_reason=_termination_reason(solved.info),
        reward_info=solved.info.get("reward_info"),
        messages=_jsonable(solved.messages),
        num_turns=sum(1 for m in solved.messages if m.get("role") in ("user", "assistant")),
    )


def _jsonable(messages: list[Any]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(messages, default=str))


def _agent(spec: EpisodeSpec, env: Any) -> Any:
    """The v1 agent of the strategy, as v1's run.py `agent_factory` builds it."""
    common = dict(
        tools_info=env.tools_info,
        wiki=env.wiki,
        model=spec.assistant.model,
        provider=spec.assistant.provider,
        temperature=spec.assistant_settings.temperature,
    )
    strategy = AGENT_STRATEGIES[spec.agent.name]  # validated
    if strategy == "tool-calling":
        from tau_bench.agents.tool_calling_agent import ToolCallingAgent

        return ToolCallingAgent(**common)
    if strategy in ("act", "react"):
        from tau_bench.agents.chat_react_agent import ChatReActAgent

        return ChatReActAgent(**common, use_reasoning=strategy == "react")
    from tau_bench.agents.few_shot_agent import FewShotToolCallingAgent

    return FewShotToolCallingAgent(
        **common, few_shot_displays=list(load_examples(spec.agent.few_shot.path)), num_few_shots=spec.agent.few_shot.num
    )


def _termination_reason(info: dict[str, Any]) -> str:
    if not info.get("reward_info"):
        return "max_steps"  # solve() ran out of steps before the episode was done
    return "user_stop" if info.get("source") == "user" else "agent_stop"  # ###STOP###, or a transfer


# The model calls of v1's agents (assistant) and user simulators (user): module-level names
# bound by `from litellm import completion`, replaced once per process by the episode router.
_COMPLETION_MODULES = {
    "tau_bench.agents.tool_calling_agent": "assistant",
    "tau_bench.agents.chat_react_agent": "assistant",
    "tau_bench.agents.few_shot_agent": "assistant",
    "tau_bench.envs.user": "user",
}
_episode = threading.local()  # the models of the episode this thread runs
_routing_lock = threading.Lock()


def _route_completions() -> None:
    """Route v1's model calls to the episode's models, and its few-shot sampling to the
    episode's random source (v1's `random.sample` on the module-level `random`)."""
    with _routing_lock:
        few_shot = importlib.import_module("tau_bench.agents.few_shot_agent")
        if getattr(few_shot, "random", None) is random:
            setattr(few_shot, "random", _EpisodeRandom())  # noqa: B010  (v1's module-level name)
        for module_name, role in _COMPLETION_MODULES.items():
            module = importlib.import_module(module_name)
            if not getattr(module.completion, "routed_by_tau_exp", False):
                setattr(module, "completion", _routed_completion(role))  # noqa: B010  (v1's module-level name)
        users = importlib.import_module("tau_bench.envs.user")
        for step in ("verify", "reflect"):  # the verify and reflection users' extra calls
            function = getattr(users, step, None)
            if function is not None and not getattr(function, "routed_by_tau_exp", False):
                setattr(users, step, _with_purpose(function, step))


class _EpisodeRandom:
    """The `random` module, as v1's few-shot agent sees it: the episode's seeded source."""

    def __getattr__(self, name: str) -> Any:
        return getattr(getattr(_episode, "random", None) or random, name)


def _with_purpose(function, purpose: str):
    """`function`, with the user calls it makes tagged with `purpose` (for traces and the oracle)."""

    def tagged(*args: Any, **kwargs: Any) -> Any:
        previous, _episode.purpose = getattr(_episode, "purpose", None), purpose
        try:
            return function(*args, **kwargs)
        finally:
            _episode.purpose = previous

    tagged.routed_by_tau_exp = True  # type: ignore[attr-defined]
    return tagged


def _routed_completion(role: str):
    def completion(*, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **_: Any) -> Any:
        # The model name, provider and temperature v1 passes are the episode's own settings.
        models: dict[str, ChatModel] | None = getattr(_episode, "models", None)
        if models is None:
            raise RuntimeError("tau-bench called a model outside a tau_exp episode")
        purpose = (getattr(_episode, "purpose", None) or _episode.user_purpose) if role == "user" else "reply"
        response = models[role].response(messages, tools, purpose)
        message = response.choices[0].message
        if role == "assistant":  # the conversation so far, as the agent keeps it, and its reply
            _episode.conversation = [*messages, message.model_dump()]
        if message.content:  # as for every reply: the other side never sees the thinking
            message.content = strip_reasoning(message.content)
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict) and hidden.get("response_cost") is None:
            hidden["response_cost"] = 0.0  # unpriced (local) models: v1's agents add the costs up
        return response

    completion.routed_by_tau_exp = True  # type: ignore[attr-defined]
    return completion
