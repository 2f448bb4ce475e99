"""What the oracle says, given a tau2 task and the conversation so far (OpenAI-format messages).

As assistant it replays the task's gold actions as tool calls, one per turn, then states the
task's information to communicate. As user it opens with the task's reason for calling and ends
with ###STOP### once the assistant has answered. That scores 1.0 under tau2's own evaluation on
every retail and airline task, which is what proves the pipeline and the evaluation agree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

STOP = "###STOP###"  # tau2.user.base.STOP


@dataclass
class ToolCallReply:
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[ToolCallReply] = field(default_factory=list)


class OracleScript:
    """Knows every task of every domain (loaded on first use) and answers for either role."""

    def __init__(self) -> None:
        self._tasks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def task(self, domain: str, task_id: str):
        with self._lock:
            if domain not in self._tasks:
                from tau2.run import load_tasks

                self._tasks[domain] = {task.id: task for task in load_tasks(domain, None)}
        try:
            return self._tasks[domain][task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r} in tau2 domain {domain!r}") from None

    def reply(self, role: str, task, messages: list[dict[str, Any]]) -> Reply:
        return self.assistant_reply(task, messages) if role == "assistant" else self.user_reply(task, messages)

    @staticmethod
    def assistant_reply(task, messages: list[dict[str, Any]]) -> Reply:
        criteria = task.evaluation_criteria
        actions = [a for a in (criteria.actions or []) if a.requestor == "assistant"] if criteria else []
        done = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
        if done < len(actions):
            action = actions[done]
            return Reply(tool_calls=[ToolCallReply(action.name, dict(action.arguments))])
        info = list(criteria.communicate_info or []) if criteria else []
        if info:
            return Reply(content="Your request is complete. For your information: " + "; ".join(info) + ".")
        return Reply(content="Your request is complete. Is there anything else I can help you with?")

    @staticmethod
    def user_reply(task, messages: list[dict[str, Any]]) -> Reply:
        # The user simulator's own earlier turns arrive with the role "assistant" (tau2 flips roles).
        if any(m.get("role") == "assistant" for m in messages):
            return Reply(content=f"Thank you, that is all. {STOP}")
        instructions = task.user_scenario.instructions
        opening = getattr(instructions, "reason_for_call", None) or str(instructions)
        return Reply(content=" ".join(opening.split()))
