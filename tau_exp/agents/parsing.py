"""Reading an action out of what a model wrote, for the text-protocol agents (react, act).

The format the agents ask for (as tau-bench v1's ReAct and Act agents did):

    Thought: <reasoning>                      (react only)
    Action: {"name": "<tool or respond>", "arguments": {...}}

Real open models wrap, decorate and bend it: Qwen3 `<think>…</think>` blocks (closed or not),
code fences, prose before and after, Python-style quotes, trailing commas. `parse_action`
accepts all of that; what it still cannot read is a `ParseError` with a reason the agent hands
back to the model — it never raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import json_repair

from tau_exp.llm.reasoning import strip_reasoning

RESPOND = "respond"  # the action that speaks to the user: {"name": "respond", "arguments": {"content": ...}}

_ACTION_MARKER = re.compile(r"\baction\s*:", re.IGNORECASE)
_THOUGHT = re.compile(r"\bthought\s*:\s*(.*?)(?=\baction\s*:|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|python)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Action:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    thought: str | None = None

    @property
    def is_respond(self) -> bool:
        return self.name == RESPOND


@dataclass(frozen=True)
class ParseError:
    reason: str


def parse_action(text: str | None) -> Action | ParseError:
    """The action a model's reply asks for, or why there is none."""
    body = strip_reasoning(text)
    if not body:
        return ParseError("the reply is empty")
    thought_match = _THOUGHT.search(body)
    thought = thought_match.group(1).strip() if thought_match else None
    markers = list(_ACTION_MARKER.finditer(body))
    candidate = body[markers[-1].end() :] if markers else body
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1)
    start = candidate.find("{")
    if start < 0:
        return ParseError('no JSON object after "Action:"')
    value = _loads_leniently(candidate[start:])
    if not isinstance(value, dict) or not value:
        return ParseError(f"the action is not a JSON object: {candidate[start : start + 200]!r}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return ParseError('the action has no "name" (a tool name or "respond")')
    arguments = value.get("arguments", {})
    if isinstance(arguments, str):  # some models encode the arguments twice
        arguments = _loads_leniently(arguments) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        return ParseError(f'the "arguments" of {name!r} are not a JSON object: {arguments!r:.200}')
    if name == RESPOND and not isinstance(arguments.get("content"), str):
        return ParseError('a "respond" action needs "arguments": {"content": "<message to the user>"}')
    return Action(name=name.strip(), arguments=arguments, thought=thought)


def _loads_leniently(text: str) -> Any:
    """The first JSON value in `text`, repairing quotes, trailing commas and unclosed brackets."""
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
        return value
    except json.JSONDecodeError:
        pass
    try:
        return json_repair.loads(_first_object(text))
    except Exception:  # json_repair gives up on garbage in several ways
        return None


def _first_object(text: str) -> str:
    """`text` cut after the brace that closes its first `{`, ignoring braces inside strings."""
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[: index + 1]
    return text  # unclosed: let the repair close it


def format_action(action: Action, with_thought: bool) -> str:
    """The canonical text of an action (what the oracle writes, and what examples show)."""
    payload = json.dumps({"name": action.name, "arguments": action.arguments})
    return f"Thought: {action.thought or ''}\nAction: {payload}" if with_thought else f"Action: {payload}"
