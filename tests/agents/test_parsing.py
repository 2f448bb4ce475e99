"""agents/parsing.py: actions read from what real open models write (Qwen3 think blocks,
fences, prose, Python quotes, trailing commas...), and a reason, never an exception, otherwise."""

from __future__ import annotations

import pytest

from tau_exp.agents.parsing import Action, ParseError, format_action, parse_action, strip_reasoning

FIND = {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}


@pytest.mark.parametrize(
    "reply",
    [
        # The format as asked.
        'Thought: I need the user id first.\nAction: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}',
        # Qwen3 with thinking on: a think block before the answer.
        '<think>\nThe user gave name and zip. I should look up the id.\n</think>\n\nThought: look up the user.\nAction: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}',
        # Qwen3 chat template opened <think> itself: only the closing tag is in the reply.
        'The user wants a return. Let me find them.\n</think>\n\nAction: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}',
        # Code fence, prose around it.
        'Thought: find the user.\nAction:\n```json\n{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}\n```\nI will wait for the result.',
        # Python-style quotes and a trailing comma.
        "Thought: ok\nAction: {'name': 'find_user_id_by_name_zip', 'arguments': {'first_name': 'Mei', 'last_name': 'Kovacs', 'zip': '28236',},}",
        # Lower-case markers, text after the JSON.
        'thought: ok\naction: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}} <|im_end|>',
        # Arguments encoded as a JSON string.
        'Action: {"name": "find_user_id_by_name_zip", "arguments": "{\\"first_name\\": \\"Mei\\", \\"last_name\\": \\"Kovacs\\", \\"zip\\": \\"28236\\"}"}',
        # No "Action:" marker at all, but a clear action object.
        '{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}',
        # A truncated reply (max_tokens) that only misses its closing braces.
        'Action: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"',
        # The model repeats "Action:" in its thought; the last one counts.
        'Thought: my Action: should be a lookup.\nAction: {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}}',
    ],
)
def test_real_model_replies_give_the_action(reply):
    action = parse_action(reply)
    assert isinstance(action, Action), action
    assert (action.name, action.arguments) == (FIND["name"], FIND["arguments"])


def test_the_thought_is_kept_and_respond_is_recognised():
    action = parse_action(
        'Thought: all done.\nAction: {"name": "respond", "arguments": {"content": "Your order is returned."}}'
    )
    assert action == Action("respond", {"content": "Your order is returned."}, thought="all done.")
    assert action.is_respond


def test_braces_inside_strings_do_not_end_the_object():
    action = parse_action("Action: {'name': 'respond', 'arguments': {'content': 'use {curly} braces'}} trailing }")
    assert action.arguments == {"content": "use {curly} braces"}


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("", "empty"),
        ("<think>only thinking, never answered", "empty"),
        ("Sure, I can help with that!", "no JSON object"),
        ("Action: [1, 2, 3]", "no JSON object"),
        ('Action: {"arguments": {"order_id": "#W1"}}', 'no "name"'),
        ('Action: {"name": "get_order_details", "arguments": ["#W1"]}', "are not a JSON object"),
        ('Action: {"name": "respond", "arguments": {"text": "hi"}}', 'needs "arguments": {"content"'),
        ("Action: {{{{", "not a JSON object"),
    ],
)
def test_unreadable_replies_give_a_reason_not_an_exception(reply, reason):
    result = parse_action(reply)
    assert isinstance(result, ParseError)
    assert reason in result.reason


def test_strip_reasoning_and_format_round_trip():
    assert strip_reasoning("<think>x</think>Hello") == "Hello"
    action = Action("get_order_details", {"order_id": "#W1"}, thought="check it")
    assert parse_action(format_action(action, with_thought=True)) == action
    assert parse_action(format_action(action, with_thought=False)) == Action("get_order_details", {"order_id": "#W1"})
