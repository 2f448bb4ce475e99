"""What the oracle says, given a tau2 task and the conversation so far (OpenAI-format messages).

As assistant it replays the task's gold actions, one per turn, then states the task's
information to communicate: as native tool calls when the request offers tools, as text
actions (`Thought: … Action: {json}`, what the react and act agents read) when it does not.
As user it opens with the task's reason for calling and ends with ###STOP### once the assistant
has answered; it also answers the user strategies' steps (a react reply, a verification, a
reflection). That scores 1.0 under tau2's own evaluation on every retail and airline task,
which is what proves the pipeline and the evaluation agree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tau_exp.agents.parsing import RESPOND, Action, ParseError, format_action, parse_action
from tau_exp.bench import load_tasks
from tau_exp.config import Benchmark

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
        self._tasks: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def task(self, domain: str, task_id: str, bench: Benchmark = Benchmark.tau2, split: str | None = None):
        """The task a request is about: a tau2 task, or a tau-bench v1 task in tau2's shape."""
        source = (bench, domain, split if bench != Benchmark.tau2 else None)
        with self._lock:
            if source not in self._tasks:
                self._tasks[source] = _load_tasks(*source)
        try:
            return self._tasks[source][task_id]
        except KeyError:
            raise KeyError(
                f"no task {task_id!r} in {bench} domain {domain!r}" + (f", split {split}" if split else "")
            ) from None

    def reply(self, role: str, purpose: str, task, messages: list[dict[str, Any]], tools_offered: bool) -> Reply:
        if role == "user":
            return user_reply(task, messages, purpose)
        reply = assistant_reply(task, messages, text_protocol=not tools_offered)
        if tools_offered:
            return reply
        if reply.tool_calls:  # no tools offered: the same action, written as text
            return Reply(content=_as_text_action(Action(reply.tool_calls[0].name, reply.tool_calls[0].arguments)))
        return Reply(content=_as_text_action(Action(RESPOND, {"content": reply.content})))


def _load_tasks(bench: Benchmark, domain: str, split: str | None) -> dict[str, Any]:
    if bench == Benchmark.tau_bench:  # the oracle's own environment imports tau_bench (PYTHONPATH)
        return {task.id: _v1_as_tau2(task.task) for task in load_tasks(bench, domain, split or "test")}
    return {task.id: task for task in load_tasks(bench, domain, None)}  # None: every task of the domain


def _v1_as_tau2(task) -> SimpleNamespace:
    """A tau-bench v1 task in the shape this script reads: gold actions (respond actions are the
    conversation, not tool calls), the outputs to communicate, the user's instruction."""
    actions = [
        SimpleNamespace(name=a.name, arguments=a.kwargs, requestor="assistant")
        for a in task.actions
        if a.name != RESPOND
    ]
    return SimpleNamespace(
        evaluation_criteria=SimpleNamespace(actions=actions, communicate_info=list(task.outputs)),
        user_scenario=SimpleNamespace(instructions=task.instruction),
    )


def _as_text_action(action: Action) -> str:
    return format_action(Action(action.name, action.arguments, thought="Following the procedure."), with_thought=True)


def assistant_reply(task, messages: list[dict[str, Any]], text_protocol: bool = False) -> Reply:
    criteria = task.evaluation_criteria
    actions = [a for a in (criteria.actions or []) if a.requestor == "assistant"] if criteria else []
    done = _actions_taken(messages, text_protocol)
    if done < len(actions):
        action = actions[done]
        return Reply(tool_calls=[ToolCallReply(action.name, dict(action.arguments))])
    info = list(criteria.communicate_info or []) if criteria else []
    if info:
        return Reply(content="Your request is complete. For your information: " + "; ".join(info) + ".")
    return Reply(content="Your request is complete. Is there anything else I can help you with?")


def _actions_taken(messages: list[dict[str, Any]], text_protocol: bool) -> int:
    assistant = [m for m in messages if m.get("role") == "assistant"]
    if not text_protocol:
        return sum(len(m.get("tool_calls") or []) for m in assistant)
    parsed = (parse_action(m.get("content")) for m in assistant)
    return sum(1 for action in parsed if not isinstance(action, ParseError) and action.name != RESPOND)


def user_reply(task, messages: list[dict[str, Any]], purpose: str = "reply") -> Reply:
    """The user's next message; for `verify` and `reflect` the request ends with the candidate
    reply and the instruction, and the oracle judges the candidate against its own script."""
    if purpose in ("verify", "reflect") and len(messages) < 2:
        # tau-bench v1 sends the transcript as one prompt; the oracle's own candidates keep to the script.
        return Reply(content="true" if purpose == "verify" else f"Response:\n{_user_message(task, [])}")
    if purpose in ("verify", "reflect"):
        conversation, candidate = messages[:-2], messages[-2].get("content") or ""
        expected = _user_message(task, conversation)
        if purpose == "verify":
            return Reply(content="true" if candidate.strip() == expected else "false")
        return Reply(content=f"Reflection:\nThe message strayed from my instructions.\n\nResponse:\n{expected}")
    message = _user_message(task, messages)
    if purpose == "react":
        return Reply(content=f"Thought:\nI answer the agent as my instructions say.\n\nUser Response:\n{message}")
    return Reply(content=message)


def _user_message(task, messages: list[dict[str, Any]]) -> str:
    # The user simulator's own earlier turns arrive with the role "assistant" (tau2 flips roles).
    if any(m.get("role") == "assistant" for m in messages):
        return f"Thank you, that is all. {STOP}"
    instructions = task.user_scenario.instructions
    opening = getattr(instructions, "reason_for_call", None) or str(instructions)
    return " ".join(opening.split())
