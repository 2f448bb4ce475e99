"""The environment base class of tau-bench v1 (mirrors upstream tau_bench/envs/base.py).

Reward (v1 main, after upstream PR #16): the hash of the data after the episode must equal the
hash obtained by replaying the task's gold actions on freshly loaded data, AND, if the task
lists `outputs`, every output must appear (case-insensitively, commas removed from the
message) in some "respond" action of the episode. Both checks failing or either failing gives 0.
"""

import random
from hashlib import sha256
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Type, Union

from tau_bench.envs.tool import Tool
from tau_bench.envs.user import UserStrategy, load_user
from tau_bench.types import (
    RESPOND_ACTION_NAME,
    Action,
    EnvInfo,
    EnvResetResponse,
    EnvResponse,
    RewardActionInfo,
    RewardOutputInfo,
    RewardResult,
    Task,
)

ToHashable = Union[str, int, float, Dict[str, "ToHashable"], List["ToHashable"], Set["ToHashable"]]
Hashable = Union[str, int, float, Tuple["Hashable"], Tuple[Tuple[str, "Hashable"]]]


def to_hashable(item: ToHashable) -> Hashable:
    """Turn nested dicts/lists/sets into nested tuples (dict items sorted by key)."""
    if isinstance(item, dict):
        return tuple((key, to_hashable(item[key])) for key in sorted(item))
    if isinstance(item, list):
        return tuple(to_hashable(element) for element in item)
    if isinstance(item, set):
        return tuple(sorted(to_hashable(element) for element in item))
    return item


def consistent_hash(value: Hashable) -> str:
    """sha256 hex digest of `str(value)`."""
    return sha256(str(value).encode("utf-8")).hexdigest()


class Env(object):
    """A tool-using customer-service environment with a simulated user.

    Attributes agents and runners use: `tools_info` (OpenAI tool schemas), `tools_map`,
    `wiki` (the policy text), `rules`, `tasks`, `task_index`, `task`, `user`, `data`,
    `actions` (the actions taken so far) and `terminate_tools`.
    """

    def __init__(
        self,
        data_load_func: Callable[[], Dict[str, Any]],
        tools: List[Type[Tool]],
        tasks: List[Task],
        wiki: str,
        rules: List[str],
        user_strategy: Union[str, UserStrategy],
        user_model: str,
        user_provider: Optional[str] = None,
        task_index: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.data_load_func = data_load_func
        self.data = data_load_func()
        self.tools_map: Dict[str, Type[Tool]] = {
            tool.get_info()["function"]["name"]: tool for tool in tools
        }
        self.tools_info = [tool.get_info() for tool in tools]
        self.terminate_tools: List[str] = []
        self.tasks = tasks
        # v1 uses random.randint(0, len(tasks)), which can pick one past the end.
        self.task_index = task_index if task_index is not None else random.randrange(len(tasks))
        self.task = tasks[self.task_index]
        self.wiki = wiki
        self.rules = rules
        # As in v1, an LLM-based user calls its model once here (it resets itself).
        self.user = load_user(user_strategy=user_strategy, model=user_model, provider=user_provider)
        self.actions: List[Action] = []

    def reset(self, task_index: Optional[int] = None) -> EnvResetResponse:
        """Reload the data, select the task and return the user's first message."""
        if task_index is None:
            task_index = random.randrange(len(self.tasks))
        self.task_index = task_index
        self.data = self.data_load_func()
        self.task = self.tasks[task_index]
        self.actions = []
        first_message = self.user.reset(instruction=self.task.instruction)
        return EnvResetResponse(observation=first_message, info=EnvInfo(task=self.task, source="user"))

    def step(self, action: Action) -> EnvResponse:
        """Apply one action. "respond" goes to the simulated user (the episode ends when the
        user says ###STOP###); a tool name runs the tool on `self.data`; a terminate tool
        (transfer_to_human_agents) also ends the episode. The reward is computed at the end."""
        self.actions.append(action)
        info = EnvInfo(task=self.task, source=action.name)
        done = False
        if action.name == RESPOND_ACTION_NAME:
            observation = self.user.step(action.kwargs["content"])
            info.source = "user"
            done = "###STOP###" in observation
        elif action.name in self.tools_map:
            try:
                observation = self.tools_map[action.name].invoke(data=self.data, **action.kwargs)
            except Exception as e:  # a bad call is reported to the agent, as in v1
                observation = f"Error: {e}"
            done = action.name in self.terminate_tools
        else:
            observation = f"Unknown action {action.name}"

        reward = 0.0
        if done:
            reward_result = self.calculate_reward()
            reward = reward_result.reward
            info.reward_info = reward_result
            info.user_cost = self.user.get_total_cost()
        return EnvResponse(observation=observation, reward=reward, done=done, info=info)

    def get_data_hash(self) -> str:
        return consistent_hash(to_hashable(self.data))

    def calculate_reward(self) -> RewardResult:
        """Score the episode (see the module docstring). Side effect, as in v1: `self.data`
        ends up as the gold data, and the replayed gold actions are appended to `self.actions`."""
        episode_hash = self.get_data_hash()
        gold_actions = [a for a in self.task.actions if a.name != RESPOND_ACTION_NAME]

        self.data = self.data_load_func()
        for action in self.task.actions:
            if action.name not in self.terminate_tools:
                self.step(action)
        gold_hash = self.get_data_hash()
        data_ok = episode_hash == gold_hash
        info: Union[RewardActionInfo, RewardOutputInfo] = RewardActionInfo(
            r_actions=data_ok, gt_data_hash=gold_hash
        )
        reward = 1.0 if data_ok else 0.0

        if self.task.outputs:
            said = [
                a.kwargs["content"].lower().replace(",", "")
                for a in self.actions
                if a.name == RESPOND_ACTION_NAME
            ]
            found = {out: any(out.lower() in text for text in said) for out in self.task.outputs}
            r_outputs = 1.0 if all(found.values()) else 0.0
            if r_outputs == 0.0:
                reward = 0.0
            info = RewardOutputInfo(r_outputs=r_outputs, outputs=found)
        return RewardResult(reward=reward, info=info, actions=gold_actions)
