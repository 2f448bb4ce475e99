"""`tool_calling`: the model answers with native OpenAI tool calls or with text for the user
(tau2's own LLM agent, with its prompt and state, calling the model through `ChatModel`).
All tool calls of one message are executed in order by tau2's orchestrator."""

from __future__ import annotations

from tau2.agent.base import ValidAgentInputMessage
from tau2.agent.llm_agent import LLMAgent, LLMAgentState
from tau2.data_model.message import AssistantMessage, MultiToolMessage
from tau2.environment.tool import Tool
from tau2.utils.llm_utils import to_litellm_messages

from tau_exp.config import AgentConfig
from tau_exp.llm.chat import ChatModel


class ToolCallingAgent(LLMAgent):
    def __init__(
        self, tools: list[Tool], domain_policy: str, model: ChatModel, settings: AgentConfig | None = None
    ) -> None:
        super().__init__(tools=tools, domain_policy=domain_policy, llm=model.endpoint.litellm_model)
        self.model = model
        self.tool_schemas = [tool.openai_schema for tool in tools]  # built once, not per call

    def set_seed(self, seed: int) -> None:
        self.model.seed = seed

    def generate_next_message(
        self, message: ValidAgentInputMessage, state: LLMAgentState
    ) -> tuple[AssistantMessage, LLMAgentState]:
        if isinstance(message, MultiToolMessage):
            state.messages.extend(message.tool_messages)
        else:
            state.messages.append(message)
        reply = self.model.complete(to_litellm_messages(state.system_messages + state.messages), self.tool_schemas)
        state.messages.append(reply)
        return reply, state
