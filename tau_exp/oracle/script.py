"""What the oracle says, given a tau2 task and the conversation so far (OpenAI-format messages).

It plays the task's gold actions, each side its own: the assistant's on the assistant's tools,
and in tau2's dual-control telecom domain the user's on the user's own device (`gold_turns`
splits them into the turns of each side). As assistant it takes its actions, as native tool
calls when the request offers tools and as text actions (`Thought: … Action: {json}`, what the
react and act agents read) when it does not, then hands over in text: asking the user to act on
their phone while the user has steps left, else stating the task's information to communicate.
As user it opens with the task's reason for calling, acts on its device in its turns, and ends
with ###STOP### once no gold action is left; it also answers the user strategies' steps (a react
reply, a verification, a reflection). That scores 1.0 under tau2's own evaluation on every
retail, airline and telecom test task, which is what proves the pipeline and the evaluation
agree.

Each user reply says which step of the user's script it is (`UserStep`), so the server can spoil
it with a user-side fault (`UserFault`, `spoiled_user_reply`): stop early, skip the device
actions of a turn, withhold the reason for calling. A skipped turn stays skipped: the user's
later turns read the conversation and go on as if its device actions had been taken.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from types import SimpleNamespace
from typing import Any

from tau_exp.agents.parsing import RESPOND, Action, ParseError, format_action, parse_action
from tau_exp.bench import load_tasks
from tau_exp.config import Benchmark

STOP = "###STOP###"  # tau2.user.base.STOP
DEVICE_DONE = "I have done that on my phone. What should I do next?"
ALL_DONE = f"Thank you, that is all. {STOP}"
WITHHELD_OPENING = "Hi, I need help with my account."


class UserStep(str, Enum):
    """Which step of its script a user reply is: what a user-side fault can spoil in it."""

    opening = "opening"  # its first message, the task's reason for calling (withhold)
    device_turn = "device_turn"  # the first of a turn's actions on its own device (skip_device)
    device = "device"  # a later action of the same turn
    midway = "midway"  # a later message while gold actions (of either side) follow (stop)
    last = "last"  # its last message: ###STOP###


class UserFault(str, Enum):
    """The user simulator's faults the oracle injects (`FaultConfig.user_*_rate`)."""

    stop = "user_stop"  # ends the conversation before the task is done
    skip_device = "user_skip_device"  # says it did the turn's device actions, and did none
    withhold = "user_withhold"  # opens without the task's reason for calling


SPOILS = {
    UserStep.opening: UserFault.withhold,
    UserStep.device_turn: UserFault.skip_device,
    UserStep.midway: UserFault.stop,
}


@dataclass
class ToolCallReply:
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    user_step: UserStep | None = None  # a user's reply or ReAct step: which step of its script


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


def gold_turns(task) -> list[tuple[str, list]]:
    """The task's gold actions in turns: the user's turn 1, the assistant's turn 1, the user's
    turn 2, ... (the order in which tau2's conversation hands over), each with the gold actions
    its role takes in it. A run of consecutive actions by one role goes to that role's next turn
    that comes after the previous run, so every action is taken after the ones before it."""
    criteria = task.evaluation_criteria
    actions = list(criteria.actions or []) if criteria else []
    turns: list[tuple[str, list]] = []
    for action in actions:
        role = "user" if action.requestor == "user" else "assistant"
        if turns and turns[-1][0] == role:
            turns[-1][1].append(action)
            continue
        if not turns and role == "assistant":
            turns.append(("user", []))  # the user opens the conversation
        turns.append((role, [action]))
    return turns


def _own_actions(task, role: str, turn: int) -> tuple[list, bool]:
    """The gold actions `role` takes up to the end of its `turn` (1-based), and whether any
    action of either role comes after that turn."""
    turns = gold_turns(task)
    position = 2 * (turn - 1) + (role == "assistant")  # user 1, assistant 1, user 2, ...
    actions = [action for who, taken in turns[: position + 1] if who == role for action in taken]
    return actions, any(taken for _, taken in turns[position + 1 :])


def assistant_reply(task, messages: list[dict[str, Any]], text_protocol: bool = False) -> Reply:
    """The assistant's next gold action in its current turn; when the turn's actions are done,
    what to tell the user: the next steps on their side, or (at the end) the information to
    communicate."""
    assistant = [m for m in messages if m.get("role") == "assistant"]
    actions = [_action(m, text_protocol) for m in assistant]
    taken = sum(len(calls) for calls in actions)
    # Turns end with a text message: tau2's greeting ended the first; tau-bench v1 has no greeting.
    spoken = [m for m in messages if m.get("role") in ("user", "assistant")]
    greeted = bool(spoken) and spoken[0].get("role") == "assistant"
    turn = sum(1 for calls in actions if not calls) + (0 if greeted else 1)
    gold, more_follow = _own_actions(task, "assistant", turn)
    if taken < len(gold):
        action = gold[taken]
        return Reply(tool_calls=[ToolCallReply(action.name, dict(action.arguments))])
    if more_follow:
        return Reply(content="Please follow the steps we discussed on your phone, then tell me how it went.")
    criteria = task.evaluation_criteria
    info = list(criteria.communicate_info or []) if criteria else []
    if info:
        return Reply(content="Your request is complete. For your information: " + "; ".join(info) + ".")
    return Reply(content="Your request is complete. Is there anything else I can help you with?")


def _action(message: dict[str, Any], text_protocol: bool) -> list:
    """The tool calls an assistant message makes (none: it speaks to the user)."""
    if not text_protocol:
        return list(message.get("tool_calls") or [])
    action = parse_action(message.get("content"))
    return [] if isinstance(action, ParseError) or action.name == RESPOND else [action]


def user_reply(task, messages: list[dict[str, Any]], purpose: str = "reply") -> Reply:
    """The user's next message or tool call; for `verify` and `reflect` the request ends with the
    candidate reply and the instruction, and the oracle judges the candidate against its own script."""
    if purpose in ("verify", "reflect") and len(messages) < 2:
        # tau-bench v1 sends the transcript as one prompt; the oracle's own candidates keep to the script.
        return Reply(content="true" if purpose == "verify" else f"Response:\n{_user_turn(task, []).content}")
    if purpose in ("verify", "reflect"):
        conversation, candidate = messages[:-2], messages[-2].get("content") or ""
        expected = _user_turn(task, conversation).content
        if purpose == "verify":
            return Reply(content="true" if candidate.strip() == expected else "false")
        return Reply(content=f"Reflection:\nThe message strayed from my instructions.\n\nResponse:\n{expected}")
    reply = _user_turn(task, messages)
    if purpose == "react" and reply.content:
        return Reply(content=_react(reply.content), user_step=reply.user_step)
    return reply


def spoiled_user_reply(task, messages: list[dict[str, Any]], purpose: str, fault: UserFault) -> Reply:
    """The user's reply (or ReAct step) with `fault`: `stop` ends the conversation early;
    `skip_device` takes none of the turn's device actions and goes on as if it had (its opening
    in its first turn, else that it has done them); `withhold` opens without the reason for
    calling."""
    if fault == UserFault.stop:
        content = ALL_DONE
    elif fault == UserFault.withhold:
        content = WITHHELD_OPENING
    else:
        scripted = _user_turn(task, messages, skip_device=True)
        content = (scripted.content or "") if scripted.user_step == UserStep.opening else DEVICE_DONE
    return Reply(content=_react(content) if purpose == "react" else content)


def _react(content: str) -> str:
    return f"Thought:\nI answer the agent as my instructions say.\n\nUser Response:\n{content}"


def _user_turn(task, messages: list[dict[str, Any]], skip_device: bool = False) -> Reply:
    """In the user's turn: its next gold action on its own device (telecom), then its message
    (`skip_device`: its message, as if the turn's device actions were taken). The user
    simulator's own earlier turns arrive with the role "assistant" (tau2 flips roles). A turn
    that ended before its device actions were all taken skipped the rest (the user_skip_device
    fault): they count as done, and are never taken later."""
    done, turn, done_before_turn = 0, 1, 0  # gold actions taken or skipped; the current turn
    for message in messages:
        if message.get("role") != "assistant":
            continue
        if message.get("tool_calls"):
            done += len(message["tool_calls"])
            continue
        done = done_before_turn = max(done, len(_own_actions(task, "user", turn)[0]))  # its text ends the turn
        turn += 1
    gold, more_follow = _own_actions(task, "user", turn)
    if done < len(gold) and not skip_device:
        action = gold[done]
        step = UserStep.device_turn if done == done_before_turn else UserStep.device
        return Reply(tool_calls=[ToolCallReply(action.name, dict(action.arguments))], user_step=step)
    if turn == 1:
        instructions = task.user_scenario.instructions
        opening = getattr(instructions, "reason_for_call", None) or str(instructions)
        return Reply(content=" ".join(opening.split()), user_step=UserStep.opening)
    if more_follow:
        return Reply(content=DEVICE_DONE, user_step=UserStep.midway)
    return Reply(content=ALL_DONE, user_step=UserStep.last)
