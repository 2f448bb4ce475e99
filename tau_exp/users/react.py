"""`react`: the user model first writes a thought, then the reply (tau-bench v1's react user);
only the reply reaches the agent."""

from __future__ import annotations

import re
from typing import Any

from tau2.data_model.message import AssistantMessage

from tau_exp.llm.reasoning import strip_reasoning
from tau_exp.users.llm import LLMUser

REACT_FORMAT = """
<format>
First write a Thought about what to do next (the agent never sees it), then the one message
you send to the agent, exactly like this:

Thought:
<your thought>

User Response:
<your message to the agent>
</format>"""

_RESPONSE = re.compile(r"user\s+response\s*:\s*", re.IGNORECASE)
_THOUGHT = re.compile(r"^\s*thought\s*:\s*", re.IGNORECASE)


def user_response(text: str | None) -> str:
    """The part of a react-style reply meant for the agent (the whole text if unmarked)."""
    body = strip_reasoning(text)
    parts = _RESPONSE.split(body)
    if len(parts) > 1:
        return parts[-1].strip()
    return _THOUGHT.sub("", body).strip()


# Dual-control domains (telecom): the user also acts on their own device, with tool calls.
REACT_TOOLS = "\nTo do something on your device, call one of your tools instead of writing a message."


class ReActUser(LLMUser):
    @property
    def system_prompt(self) -> str:
        return super().system_prompt + REACT_FORMAT + (REACT_TOOLS if self.tool_schemas else "")

    def respond(self, conversation: list[dict[str, Any]]) -> AssistantMessage:
        reply = self.model.complete(conversation, self.tool_schemas, purpose="react")
        if reply.tool_calls:
            return reply
        return reply.model_copy(update={"content": user_response(reply.content)})
