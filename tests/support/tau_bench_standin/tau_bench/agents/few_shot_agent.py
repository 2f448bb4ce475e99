"""Few-shot tool-calling agent (mirrors upstream tau_bench/agents/few_shot_agent.py).

Like ToolCallingAgent, but the system prompt is the wiki followed by `num_few_shots` examples
drawn with `random.sample` from `few_shot_displays` (in v1's run.py: the "messages_display"
field of each line of a JSONL file). Same `completion(...)` call as ToolCallingAgent, on this
module's `completion`.
"""

import random
from typing import Any, Dict, List, Optional

from litellm import completion

from tau_bench.agents.base import Agent
from tau_bench.agents.tool_calling_agent import message_to_action, record_turn
from tau_bench.envs.base import Env
from tau_bench.types import SolveResult

__all__ = ["FewShotToolCallingAgent", "message_to_action"]


class FewShotToolCallingAgent(Agent):
    def __init__(
        self,
        tools_info: List[Dict[str, Any]],
        wiki: str,
        model: str,
        provider: str,
        few_shot_displays: List[str],
        temperature: float = 0.0,
        num_few_shots: int = 5,
    ):
        if len(few_shot_displays) == 0:
            raise ValueError("Few shot displays are empty")
        if len(few_shot_displays) < num_few_shots:
            raise ValueError(
                f"Few shot displays are less than num_few_shots requested: {len(few_shot_displays)} < {num_few_shots}"
            )
        self.tools_info = tools_info
        self.wiki = wiki
        self.model = model
        self.provider = provider
        self.few_shot_displays = few_shot_displays
        self.temperature = temperature
        self.num_few_shots = num_few_shots

    def solve(self, env: Env, task_index: Optional[int] = None, max_num_steps: int = 30) -> SolveResult:
        shots = random.sample(self.few_shot_displays, self.num_few_shots)
        examples = "\n\n".join(f"Example {i + 1}:\n{shot}" for i, shot in enumerate(shots))
        total_cost = 0.0
        reward = 0.0
        reset = env.reset(task_index=task_index)
        info = reset.info.model_dump()
        messages: List[Dict[str, Any]] = [
            {"role": "system", "content": f"{self.wiki}\n\n{examples}"},
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
