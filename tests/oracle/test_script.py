"""The oracle's script: how a task's gold actions are split into the turns of each side, and the
oracle playing both sides of tau2's dual-control telecom domain, scored by tau2's own evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tau_exp import experiment
from tau_exp.oracle.script import assistant_reply, gold_turns, user_reply


def task(*requestors: str) -> SimpleNamespace:
    actions = [SimpleNamespace(name=f"act_{i}", arguments={}, requestor=r) for i, r in enumerate(requestors)]
    return SimpleNamespace(
        evaluation_criteria=SimpleNamespace(actions=actions, communicate_info=[]),
        user_scenario=SimpleNamespace(instructions=SimpleNamespace(reason_for_call="My phone has no data.")),
    )


def names(turns) -> list[tuple[str, list[str]]]:
    return [(role, [a.name for a in actions]) for role, actions in turns]


def test_gold_actions_become_alternating_turns_that_start_with_the_user():
    assert names(gold_turns(task("user", "user", "assistant", "user"))) == [
        ("user", ["act_0", "act_1"]),
        ("assistant", ["act_2"]),
        ("user", ["act_3"]),
    ]
    # retail and airline: the user opens, the assistant acts, and that is all.
    assert names(gold_turns(task("assistant", "assistant"))) == [("user", []), ("assistant", ["act_0", "act_1"])]


def test_each_side_acts_in_its_own_turn_and_hands_over_in_text():
    """Messages as each side's model sees them (tau2 flips the roles for the user): the user acts
    before it opens, the assistant's text hands over while the user still has steps, and the user
    stops only when no gold action is left."""
    dual = task("user", "assistant", "user")
    call = lambda name: {"role": "assistant", "tool_calls": [{"function": {"name": name}}]}  # noqa: E731
    greeting = {"role": "user", "content": "Hi! How can I help you today?"}
    assert user_reply(dual, [greeting]).tool_calls[0].name == "act_0"
    assert user_reply(dual, [greeting, call("act_0"), {"role": "tool"}]).content == "My phone has no data."
    assistant_view = [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "My phone has no data."}]
    assert assistant_reply(dual, assistant_view).tool_calls[0].name == "act_1"
    after_action = [*assistant_view, call("act_1"), {"role": "tool"}]
    assert "on your phone" in (assistant_reply(dual, after_action).content or "")
    user_view = [greeting, call("act_0"), {"role": "tool"}, {"role": "assistant", "content": "My phone has no data."}]
    user_view.append({"role": "user", "content": "Please follow the steps on your phone."})
    assert user_reply(dual, user_view).tool_calls[0].name == "act_2"
    user_view += [call("act_2"), {"role": "tool"}]
    assert (user_reply(dual, user_view).content or "").endswith("###STOP###")


def test_the_oracle_plays_both_sides_of_telecom(tmp_path: Path, compose_cfg, attached):
    """A sample of telecom test tasks (9–11: the assistant alone, then turns that alternate
    user and assistant) scores 1.0 under tau2's evaluation; the user's own tool calls and their
    results are in the record as the user's."""
    metrics = experiment.run(compose_cfg("env=telecom", "tasks.start=9", "tasks.end=12", *attached), tmp_path)
    assert (metrics.env, metrics.n_results, metrics.avg_reward) == ("telecom", 3, 1.0)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    user_calls = [m for r in records for m in r["messages"] if m["role"] == "user" and m.get("tool_calls")]
    user_results = [m for r in records for m in r["messages"] if m["role"] == "tool" and m["requestor"] == "user"]
    assert user_calls and len(user_results) == sum(len(m["tool_calls"]) for m in user_calls)
    assert all(r["reward_info"]["reward_basis"] != ["DB", "COMMUNICATE"] for r in records)


def test_without_a_greeting_the_assistants_first_turn_is_its_first_reply():
    """tau-bench v1's conversations open with the user (no greeting): the assistant still acts first."""
    retail = task("assistant", "assistant")
    opened = [{"role": "system", "content": "policy"}, {"role": "user", "content": "Cancel my order."}]
    assert assistant_reply(retail, opened).tool_calls[0].name == "act_0"
    greeted = [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Cancel my order."}]
    assert assistant_reply(retail, greeted).tool_calls[0].name == "act_0"
