"""`react`: the model writes a thought, then one action as JSON in plain text — no native tool
calling, so open models served without a tool parser can be evaluated (tau-bench v1's ReAct).

    Thought: <reasoning>
    Action: {"name": "<tool name or respond>", "arguments": {...}}

The model-facing conversation is kept in the agent's own state as text (tool results come
back as "API output: …"); tau2 sees ordinary tool calls and messages, so its orchestrator,
error counting and evaluation apply unchanged. A reply that cannot be read becomes a call of
the unknown tool `invalid_action`: tau2's environment answers it with an error, which counts
toward `run.max_errors` exactly like a failed tool call, and the model is told what was wrong.
"""

from __future__ import annotations

import json
import uuid

from pydantic import BaseModel, Field
from tau2.agent.base import LocalAgent, ValidAgentInputMessage
from tau2.data_model.message import AssistantMessage, Message, MultiToolMessage, ToolCall, ToolMessage, UserMessage
from tau2.environment.tool import Tool

from tau_exp.agents.parsing import RESPOND, ParseError, parse_action
from tau_exp.config import AgentConfig
from tau_exp.llm.chat import ChatModel

INVALID_ACTION = "invalid_action"  # not a tool of any domain: the environment returns an error

INSTRUCTION = """You are a customer service agent that helps the user according to the <policy> below.

In each turn, {how} then take exactly one action: call one of the tools below, or reply to the
user with the action "respond". Format your answer exactly like this:

{format}

To reply to the user:
{respond_example}

The tools:
{tools}
"""

REACT_FORMAT = 'Thought: <your reasoning about what to do next>\nAction: {"name": "<tool name>", "arguments": {<the arguments as JSON>}}'
ACT_FORMAT = 'Action: {"name": "<tool name>", "arguments": {<the arguments as JSON>}}'


class TextAgentState(BaseModel):
    """What the model sees (text only), and which tool calls stood for unreadable replies."""

    system_prompt: str
    prompt: list[dict] = Field(default_factory=list)  # OpenAI-format messages after the system prompt
    invalid_calls: dict[str, str] = Field(default_factory=dict)  # tool call id → why it was unreadable


class ReActAgent(LocalAgent[TextAgentState]):
    with_thought = True

    def __init__(
        self, tools: list[Tool], domain_policy: str, model: ChatModel, settings: AgentConfig | None = None
    ) -> None:
        super().__init__(tools=tools, domain_policy=domain_policy)
        self.model = model
        schemas = [tool.openai_schema["function"] for tool in tools]
        example = 'Action: {"name": "respond", "arguments": {"content": "<your message to the user>"}}'
        instruction = INSTRUCTION.format(
            how="think step by step about what to do next," if self.with_thought else "decide what to do next,",
            format=REACT_FORMAT if self.with_thought else ACT_FORMAT,
            respond_example=("Thought: <reasoning>\n" if self.with_thought else "") + example,
            tools=json.dumps(schemas, indent=1),
        )
        self.system_prompt = f"<instructions>\n{instruction}</instructions>\n<policy>\n{domain_policy}\n</policy>"

    def set_seed(self, seed: int) -> None:
        self.model.seed = seed

    def get_init_state(self, message_history: list[Message] | None = None) -> TextAgentState:
        state = TextAgentState(system_prompt=self.system_prompt)
        for message in message_history or []:
            self._observe(message, state)
        return state

    def generate_next_message(
        self, message: ValidAgentInputMessage, state: TextAgentState
    ) -> tuple[AssistantMessage, TextAgentState]:
        self._observe(message, state)
        reply = self.model.complete([{"role": "system", "content": state.system_prompt}, *state.prompt])
        state.prompt.append({"role": "assistant", "content": reply.content or ""})
        action = parse_action(reply.content)
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        if isinstance(action, ParseError):
            state.invalid_calls[call_id] = action.reason
            tool_calls = [ToolCall(id=call_id, name=INVALID_ACTION, arguments={"reason": action.reason})]
            return AssistantMessage(role="assistant", tool_calls=tool_calls, usage=reply.usage), state
        if action.name == RESPOND:
            return AssistantMessage(role="assistant", content=action.arguments["content"], usage=reply.usage), state
        tool_calls = [ToolCall(id=call_id, name=action.name, arguments=action.arguments)]
        return AssistantMessage(role="assistant", tool_calls=tool_calls, usage=reply.usage), state

    def _observe(self, message: Message, state: TextAgentState) -> None:
        """Add what the model should read about `message` to its text conversation."""
        if isinstance(message, MultiToolMessage):
            for tool_message in message.tool_messages:
                self._observe(tool_message, state)
        elif isinstance(message, ToolMessage):
            reason = state.invalid_calls.get(message.id)
            text = (
                (
                    f"Your last reply could not be read ({reason}). Answer in the format:\n"
                    f"{REACT_FORMAT if self.with_thought else ACT_FORMAT}"
                )
                if reason
                else f"API output: {message.content}"
            )
            state.prompt.append({"role": "user", "content": text})
        elif isinstance(message, UserMessage):
            state.prompt.append({"role": "user", "content": message.content or ""})
        elif isinstance(message, AssistantMessage) and not message.is_tool_call():
            # A message in the history (e.g. tau2's greeting), shown as the action that sends it.
            respond = {"name": RESPOND, "arguments": {"content": message.content or ""}}
            prefix = "Thought: I greet the user.\n" if self.with_thought else ""
            state.prompt.append({"role": "assistant", "content": f"{prefix}Action: {json.dumps(respond)}"})
