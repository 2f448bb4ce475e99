"""`llm`: tau2's user simulator as it is (its guidelines, the task's scenario, role flipping),
with the model call going through `ChatModel`. The other strategies change only `respond`."""

from __future__ import annotations

from typing import Any

from tau2.data_model.message import AssistantMessage, MultiToolMessage, ToolCall, UserMessage
from tau2.environment.tool import Tool
from tau2.user.base import UserState, ValidUserInputMessage
from tau2.user.user_simulator import UserSimulator
from tau2.utils.llm_utils import to_litellm_messages

from tau_exp.config import UserConfig
from tau_exp.llm.chat import ChatModel


class LLMUser(UserSimulator):
    def __init__(
        self, tools: list[Tool] | None, instructions: str, model: ChatModel, settings: UserConfig | None = None
    ) -> None:
        super().__init__(tools=tools, instructions=instructions, llm=model.endpoint.litellm_model)
        self.model = model
        self.settings = settings or UserConfig(name=model.endpoint.model)
        self.tool_schemas = [tool.openai_schema for tool in tools] if tools else None

    def set_seed(self, seed: int) -> None:
        self.model.seed = seed

    def respond(self, conversation: list[dict[str, Any]]) -> AssistantMessage:
        """The user's next message, from the conversation as the user model sees it (roles flipped)."""
        return self.model.complete(conversation, self.tool_schemas)

    def _generate_next_message(self, message: ValidUserInputMessage, state: UserState) -> tuple[UserMessage, UserState]:
        if isinstance(message, MultiToolMessage):
            state.messages.extend(message.tool_messages)
        else:
            state.messages.append(message)
        reply = self.respond(to_litellm_messages(state.system_messages + state.flip_roles()))
        user_message = UserMessage(
            role="user",
            content=reply.content,
            usage=reply.usage,
            tool_calls=[
                ToolCall(id=c.id, name=c.name, arguments=c.arguments, requestor="user") for c in reply.tool_calls
            ]
            if reply.tool_calls
            else None,
        )
        state.messages.append(user_message)
        return user_message, state
