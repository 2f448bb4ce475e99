"""`run`, `agent_factory` and `display_metrics` of tau-bench v1 (mirrors upstream tau_bench/run.py).

Results file: `{log_dir}/{agent_strategy}-{model.split('/')[-1]}-{temperature}_range_{start_index}-
{end_index}_user-{user_model}-{user_strategy}_{%m%d%H%M%S}.json`, a JSON list of
`EnvRunResult.model_dump()` dicts (task_id, reward, info, traj, trial). It is rewritten after
every finished task (checkpoint) and once more at the end with all results in order.
"""

import json
import os
import random
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from math import comb
from typing import Any, Dict, List

from litellm import provider_list

from tau_bench.agents.base import Agent
from tau_bench.envs import get_env
from tau_bench.envs.user import UserStrategy
from tau_bench.types import EnvRunResult, RunConfig

AGENT_STRATEGIES = ["tool-calling", "act", "react", "few-shot"]


def checkpoint_path(config: RunConfig, time_str: str) -> str:
    """v1's results file name (a helper of this double; v1 builds it inline in run())."""
    return (
        f"{config.log_dir}/{config.agent_strategy}-{config.model.split('/')[-1]}-{config.temperature}"
        f"_range_{config.start_index}-{config.end_index}_user-{config.user_model}-{config.user_strategy}"
        f"_{time_str}.json"
    )


def run(config: RunConfig) -> List[EnvRunResult]:
    """Run every selected task `num_trials` times; print metrics; write the results file."""
    assert config.env in ["retail", "airline"], "Only retail and airline envs are supported"
    assert config.model_provider in provider_list, "Invalid model provider"
    assert config.user_model_provider in provider_list, "Invalid user model provider"
    assert config.agent_strategy in AGENT_STRATEGIES, "Invalid agent strategy"
    assert config.task_split in ["train", "test", "dev"], "Invalid task split"
    assert config.user_strategy in [s.value for s in UserStrategy], "Invalid user strategy"

    random.seed(config.seed)
    ckpt_path = checkpoint_path(config, datetime.now().strftime("%m%d%H%M%S"))
    os.makedirs(config.log_dir, exist_ok=True)

    env = get_env(
        config.env,
        user_strategy=config.user_strategy,
        user_model=config.user_model,
        user_provider=config.user_model_provider,
        task_split=config.task_split,
    )
    agent = agent_factory(tools_info=env.tools_info, wiki=env.wiki, config=config)
    end_index = len(env.tasks) if config.end_index == -1 else min(config.end_index, len(env.tasks))
    lock = threading.Lock()
    results: List[EnvRunResult] = []

    for trial in range(config.num_trials):
        idxs = list(config.task_ids) if config.task_ids else list(range(config.start_index, end_index))
        if config.shuffle:
            random.shuffle(idxs)

        def _run(idx: int) -> EnvRunResult:
            isolated_env = get_env(
                config.env,
                user_strategy=config.user_strategy,
                user_model=config.user_model,
                task_split=config.task_split,
                user_provider=config.user_model_provider,
                task_index=idx,
            )
            try:
                res = agent.solve(env=isolated_env, task_index=idx)
                result = EnvRunResult(task_id=idx, reward=res.reward, info=res.info, traj=res.messages, trial=trial)
            except Exception as e:  # a failed task scores 0, as in v1
                result = EnvRunResult(
                    task_id=idx,
                    reward=0.0,
                    info={"error": str(e), "traceback": traceback.format_exc()},
                    traj=[],
                    trial=trial,
                )
            with lock:
                done = []
                if os.path.exists(ckpt_path):
                    with open(ckpt_path) as f:
                        done = json.load(f)
                with open(ckpt_path, "w") as f:
                    json.dump(done + [result.model_dump()], f, indent=2)
            return result

        with ThreadPoolExecutor(max_workers=config.max_concurrency) as executor:
            results.extend(executor.map(_run, idxs))

    display_metrics(results)
    with open(ckpt_path, "w") as f:
        json.dump([r.model_dump() for r in results], f, indent=2)
    return results


def agent_factory(tools_info: List[Dict[str, Any]], wiki, config: RunConfig) -> Agent:
    """Build the agent named by `config.agent_strategy`."""
    common = dict(tools_info=tools_info, wiki=wiki, model=config.model, provider=config.model_provider)
    if config.agent_strategy == "tool-calling":
        from tau_bench.agents.tool_calling_agent import ToolCallingAgent

        return ToolCallingAgent(**common, temperature=config.temperature)
    if config.agent_strategy in ("act", "react"):
        from tau_bench.agents.chat_react_agent import ChatReActAgent

        return ChatReActAgent(
            **common, use_reasoning=config.agent_strategy == "react", temperature=config.temperature
        )
    if config.agent_strategy == "few-shot":
        from tau_bench.agents.few_shot_agent import FewShotToolCallingAgent

        assert config.few_shot_displays_path is not None, "Few shot displays path is required for few-shot agent strategy"
        with open(config.few_shot_displays_path) as f:
            displays = [json.loads(line)["messages_display"] for line in f]
        return FewShotToolCallingAgent(**common, few_shot_displays=displays, temperature=config.temperature)
    raise ValueError(f"Unknown agent strategy: {config.agent_strategy}")


def display_metrics(results: List[EnvRunResult]) -> None:
    """Print the average reward and pass^k for k = 1..num_trials:
    pass^k = mean over tasks of C(c, k) / C(n, k), with n trials and c successes
    (reward within 1e-6 of 1)."""
    num_trials = len({r.trial for r in results})
    avg_reward = sum(r.reward for r in results) / len(results)
    successes: Dict[int, int] = {}
    for r in results:
        successes[r.task_id] = successes.get(r.task_id, 0) + int(1 - 1e-6 <= r.reward <= 1 + 1e-6)
    print(f"🏆 Average reward: {avg_reward}")
    print("📈 Pass^k")
    for k in range(1, num_trials + 1):
        pass_hat_k = sum(comb(c, k) / comb(num_trials, k) for c in successes.values()) / len(successes)
        print(f"  k={k}: {pass_hat_k}")
