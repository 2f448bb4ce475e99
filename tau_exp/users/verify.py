"""`verify`: each reply of the user model is checked against the user's instructions by the
same model; a reply that fails the check is generated again, up to `user.verify_attempts`
replies, the last of which is kept (tau-bench v1's verify user)."""

from __future__ import annotations

from typing import Any

from tau2.data_model.message import AssistantMessage

from tau_exp.users.llm import LLMUser

VERIFY_PROMPT = """Check the message you just wrote as the customer against your instructions
and the conversation so far. Is it a faithful, natural next message from this customer: true to
the instructions, inventing nothing, giving no more information than needed now, and ending
with ###STOP### only when the goal is reached? Answer with one word: true or false."""


class VerifyUser(LLMUser):
    def respond(self, conversation: list[dict[str, Any]]) -> AssistantMessage:
        candidate = super().respond(conversation)
        for _ in range(self.settings.verify_attempts - 1):
            if self.verified(conversation, candidate):
                break
            candidate = self.improve(conversation, candidate)
        return candidate

    def verified(self, conversation: list[dict[str, Any]], candidate: AssistantMessage) -> bool:
        if candidate.tool_calls:  # tool calls are checked by the environment, not here
            return True
        verdict = self.model.complete(after_candidate(conversation, candidate, VERIFY_PROMPT), purpose="verify")
        return "true" in (verdict.content or "").lower()

    def improve(self, conversation: list[dict[str, Any]], rejected: AssistantMessage) -> AssistantMessage:
        """Another reply after `rejected` failed the check: here, simply a new generation."""
        return super().respond(conversation)


def after_candidate(
    conversation: list[dict[str, Any]], candidate: AssistantMessage, instruction: str
) -> list[dict[str, Any]]:
    """The conversation, the candidate as the user model's own turn, then an instruction."""
    return [
        *conversation,
        {"role": "assistant", "content": candidate.content or ""},
        {"role": "user", "content": instruction},
    ]
