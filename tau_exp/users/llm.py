"""`llm`: tau2's user simulator as it is (its guidelines, the task's scenario, role flipping),
with the model call going through `ChatModel`."""

from __future__ import annotations

from tau2.data_model.message import MultiToolMessage, ToolCall, UserMessage
from tau2.environment.tool import Tool
from tau2.user.base import UserState, ValidUserInputMessage
from tau2.user.user_simulator import UserSimulator
from tau2.utils.llm_utils import to_litellm_messages

from tau_exp.llm import ChatModel


class LLMUser(UserSimulator):
    def __init__(self, tools: list[Tool] | None, instructions: str, model: ChatModel) -> None:
        super().__init__(tools=tools, instructions=instructions, llm=model.endpoint.litellm_model)
        self.model = model
        self.tool_schemas = [tool.openai_schema for tool in tools] if tools else None

    def set_seed(self, seed: int) -> None:
        self.model.seed = seed

    def _generate_next_message(self, message: ValidUserInputMessage, state: UserState) -> tuple[UserMessage, UserState]:
        if isinstance(message, MultiToolMessage):
            state.messages.extend(message.tool_messages)
        else:
            state.messages.append(message)
        reply = self.model.complete(to_litellm_messages(state.system_messages + state.flip_roles()), self.tool_schemas)
        user_message = UserMessage(
            role="user",
            content=reply.content,
            usage=reply.usage,
            tool_calls=[ToolCall(id=c.id, name=c.name, arguments=c.arguments, requestor="user")
                        for c in reply.tool_calls] if reply.tool_calls else None,
        )
        state.messages.append(user_message)
        return user_message, state
