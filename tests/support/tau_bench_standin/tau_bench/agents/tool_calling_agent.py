"""Native tool-calling agent (mirrors upstream tau_bench/agents/tool_calling_agent.py).

Model call, exactly as v1: `completion(messages=..., model=..., custom_llm_provider=...,
tools=..., temperature=...)` on this module's `completion`; the reply is
`res.choices[0].message.model_dump()` and the cost `res._hidden_params["response_cost"]`
(summed into SolveResult.total_cost, so it must be a number).
"""

import json
from typing import Any, Dict, List, Optional

from litellm import completion

from tau_bench.agents.base import Agent
from tau_bench.envs.base import Env
from tau_bench.types import RESPOND_ACTION_NAME, Action, SolveResult


class ToolCallingAgent(Agent):
    def __init__(
        self,
        tools_info: List[Dict[str, Any]],
        wiki: str,
        model: str,
        provider: str,
        temperature: float = 0.0,
    ):
        self.tools_info = tools_info
        self.wiki = wiki
        self.model = model
        self.provider = provider
        self.temperature = temperature

    def solve(self, env: Env, task_index: Optional[int] = None, max_num_steps: int = 30) -> SolveResult:
        total_cost = 0.0
        reward = 0.0
        reset = env.reset(task_index=task_index)
        info = reset.info.model_dump()
        messages: List[Dict[str, Any]] = [
            {"role": "system", "content": self.wiki},
            {"role": "user", "content": reset.observation},
        ]
        for _ in range(max_num_steps):
            res = completion(
                messages=messages,
                model=self.model,
                custom_llm_provider=self.provider,
                tools=self.tools_info,
                temperature=self.temperature,
            )
            next_message = res.choices[0].message.model_dump()
            total_cost += res._hidden_params["response_cost"]
            action = message_to_action(next_message)
            env_response = env.step(action)
            reward = env_response.reward
            info = {**info, **env_response.info.model_dump()}
            record_turn(messages, next_message, action, env_response.observation)
            if env_response.done:
                break
        return SolveResult(reward=reward, info=info, messages=messages, total_cost=total_cost)


def record_turn(messages: List[Dict[str, Any]], next_message: Dict[str, Any], action: Action, observation: str) -> None:
    """Append the assistant message and what came back, as v1 does: a tool call is cut to its
    first call and answered by a {"role": "tool", ...} message; a reply is followed by the
    user's next line as {"role": "user", ...}. (Helper of this double; v1 inlines it.)"""
    if action.name != RESPOND_ACTION_NAME:
        next_message["tool_calls"] = next_message["tool_calls"][:1]
        call = next_message["tool_calls"][0]
        messages.append(next_message)
        messages.append(
            {"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"], "content": observation}
        )
    else:
        messages.append(next_message)
        messages.append({"role": "user", "content": observation})


def message_to_action(message: Dict[str, Any]) -> Action:
    """The first tool call of an assistant message, or a "respond" action with its content."""
    tool_calls = message.get("tool_calls")
    if tool_calls and tool_calls[0]["function"] is not None:
        function = tool_calls[0]["function"]
        return Action(name=function["name"], kwargs=json.loads(function["arguments"]))
    return Action(name=RESPOND_ACTION_NAME, kwargs={"content": message["content"]})
