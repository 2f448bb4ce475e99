"""ReAct / Act agent over plain chat (mirrors upstream tau_bench/agents/chat_react_agent.py).

The tools are described in the system prompt; the model writes "Thought: ...\\nAction: {json}"
(use_reasoning=True, strategy "react") or just "Action: {json}" (use_reasoning=False, strategy
"act"). Model call, exactly as v1: `completion(model=..., custom_llm_provider=...,
messages=..., temperature=...)` -- no `tools`. Tool results go back as user messages prefixed
"API output: ". As in v1, the SolveResult has no total_cost (None) although costs are read.
"""

import json
from typing import Any, Dict, List, Optional, Tuple

from litellm import completion

from tau_bench.agents.base import Agent
from tau_bench.envs.base import Env
from tau_bench.types import RESPOND_ACTION_FIELD_NAME, RESPOND_ACTION_NAME, Action, SolveResult


class ChatReActAgent(Agent):
    def __init__(
        self,
        tools_info: List[Dict[str, Any]],
        wiki: str,
        model: str,
        provider: str,
        use_reasoning: bool = True,
        temperature: float = 0.0,
    ) -> None:
        instruction = REACT_INSTRUCTION if use_reasoning else ACT_INSTRUCTION
        self.prompt = wiki + "\n#Available tools\n" + json.dumps(tools_info) + instruction
        self.model = model
        self.provider = provider
        self.temperature = temperature
        self.use_reasoning = use_reasoning
        self.tools_info = tools_info

    def generate_next_step(self, messages: List[Dict[str, Any]]) -> Tuple[Dict[str, Any], Action, float]:
        """One model call; the text after the last "Action:" is parsed as JSON
        {"name", "arguments"}; text that is not JSON becomes a "respond" action."""
        res = completion(
            model=self.model,
            custom_llm_provider=self.provider,
            messages=messages,
            temperature=self.temperature,
        )
        message = res.choices[0].message
        action_text = message.content.split("Action:")[-1].strip()
        try:
            parsed = json.loads(action_text)
        except json.JSONDecodeError:
            parsed = {"name": RESPOND_ACTION_NAME, "arguments": {RESPOND_ACTION_FIELD_NAME: action_text}}
        assert "name" in parsed
        assert "arguments" in parsed
        action = Action(name=parsed["name"], kwargs=parsed["arguments"])
        return message.model_dump(), action, res._hidden_params["response_cost"]

    def solve(self, env: Env, task_index: Optional[int] = None, max_num_steps: int = 30) -> SolveResult:
        response = env.reset(task_index=task_index)
        reward = 0.0
        messages: List[Dict[str, Any]] = [
            {"role": "system", "content": self.prompt},
            {"role": "user", "content": response.observation},
        ]
        total_cost = 0.0
        info: Dict[str, Any] = {}  # unlike the tool-calling agents, v1 starts from {} here
        for _ in range(max_num_steps):
            message, action, cost = self.generate_next_step(messages)
            response = env.step(action)
            reward = response.reward
            info = {**info, **response.info.model_dump()}
            observation = response.observation
            if action.name != RESPOND_ACTION_NAME:
                observation = "API output: " + observation
            messages.append(message)
            messages.append({"role": "user", "content": observation})
            total_cost += cost
            if response.done:
                break
        return SolveResult(messages=messages, reward=reward, info=info)


_FORMAT_EXAMPLE = f"""For example, with a tool "get_current_weather" taking "location" and "format":
{{"name": "get_current_weather", "arguments": {{"location": "San Francisco, CA", "format": "fahrenheit"}}}}
and to answer the user:
{{"name": "{RESPOND_ACTION_NAME}", "arguments": {{"{RESPOND_ACTION_FIELD_NAME}": "It is 70F in San Francisco."}}}}
"""

REACT_INSTRUCTION = f"""
# Instruction
Act as an agent that uses the tools above to help the user, following the policy above.
Each generation must have exactly this format:
Thought:
<one line of reasoning>
Action:
{{"name": <the action name>, "arguments": <the arguments as a JSON object>}}

The Action is parsed, so it must be valid JSON. Do not use made-up or placeholder arguments.
{_FORMAT_EXAMPLE}"""

ACT_INSTRUCTION = f"""
# Instruction
Act as an agent that uses the tools above to help the user, following the policy above.
Each generation must have exactly this format:
Action:
{{"name": <the action name>, "arguments": <the arguments as a JSON object>}}

The Action is parsed, so it must be valid JSON. Do not use made-up or placeholder arguments.
{_FORMAT_EXAMPLE}"""
