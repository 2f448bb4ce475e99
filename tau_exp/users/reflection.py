"""`reflection`: like `verify`, but a reply that fails the check is followed by a reflection on
what was wrong and a new reply written from it (tau-bench v1's reflection user)."""

from __future__ import annotations

import re
from typing import Any

from tau2.data_model.message import AssistantMessage

from tau_exp.llm.reasoning import strip_reasoning
from tau_exp.users.verify import VerifyUser, after_candidate

REFLECT_PROMPT = """The message you just wrote as the customer does not follow your instructions
or the conversation. Reflect on what is wrong with it, then write a better message, exactly like
this:

Reflection:
<what was wrong>

Response:
<the new message to the agent>"""

_RESPONSE = re.compile(r"\bresponse\s*:\s*", re.IGNORECASE)


class ReflectionUser(VerifyUser):
    def improve(self, conversation: list[dict[str, Any]], rejected: AssistantMessage) -> AssistantMessage:
        reflection = self.model.complete(after_candidate(conversation, rejected, REFLECT_PROMPT), purpose="reflect")
        parts = _RESPONSE.split(strip_reasoning(reflection.content))
        if len(parts) < 2 or not parts[-1].strip():
            return super().improve(conversation, rejected)  # no usable response: generate anew
        return reflection.model_copy(update={"content": parts[-1].strip()})
