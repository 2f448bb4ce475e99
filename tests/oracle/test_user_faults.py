"""The oracle's user-side faults (`FaultConfig.user_*_rate`): the user simulator stops early,
skips its device actions or withholds its reason for calling — in real tau2 episodes against
the session's faulty oracle pair, scored by tau2's own evaluation, each counted of its share in
the oracle's `/oracle/stats` and the job's metrics.json. With their rates at 0 the other faults
fall exactly as they did before user faults existed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import httpx

from tau_exp import experiment
from tau_exp.endpoint import Endpoint
from tau_exp.llm.tags import EpisodeTag
from tau_exp.oracle.script import DEVICE_DONE, WITHHELD_OPENING, UserStep, user_reply
from tau_exp.records import EpisodeResult, Metrics
from tests.support.oracle_chat import stats

# Telecom test task 11: the user opens; the assistant asks for a payment; the user pays on its
# phone (make_payment); the assistant resumes the line (resume_line); the user reboots and
# reseats its SIM card.
DUAL_TASK = ("env=telecom", "tasks.start=11", "tasks.end=12")


def run_one(tmp_path: Path, compose_cfg, overrides: list[str]) -> tuple[EpisodeResult, Metrics]:
    metrics = experiment.run(compose_cfg(*overrides), tmp_path)
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    return EpisodeResult.model_validate_json(line), metrics


def tool_calls(result: EpisodeResult, role: str) -> list[str]:
    return [call["name"] for m in result.messages if m["role"] == role for call in m.get("tool_calls") or []]


def test_a_user_that_stops_early_leaves_the_assistants_later_writes_undone(
    tmp_path, compose_cfg, attach_to, oracle_faults
):
    faulty = oracle_faults(user={"user_stop_rate": 1.0})
    result, metrics = run_one(tmp_path, compose_cfg, [*DUAL_TASK, *attach_to(faulty)])
    assert (result.termination_reason, result.reward) == ("user_stop", 0.0)
    assert tool_calls(result, "user") == ["make_payment"]  # it paid, then stopped instead of asking what next
    assert tool_calls(result, "assistant") == ["send_payment_request"]  # resume_line never came
    served = stats(faulty["user"])
    assert (served["fault_user_stop"], served["user_turns_midway"]) == (1, 1)
    counts = (metrics.injected_faults or {})["user"]
    assert (counts.user_stop, counts.user_turns_midway, counts.rates) == (1, 1, {"user_stop_rate": 1.0})
    assert counts.describe() == "user_stop 1 of 1 user turns midway (rate 1)"


def test_a_user_that_skips_its_device_actions_leaves_the_phone_broken(tmp_path, compose_cfg, attach_to, oracle_faults):
    """The user says it did what was asked and never does it, in either of its turns with device
    actions; the assistant takes all its own gold actions, the conversation ends normally, and
    tau2's check of the phone's state fails."""
    faulty = oracle_faults(user={"user_skip_device_rate": 1.0})
    result, metrics = run_one(tmp_path, compose_cfg, [*DUAL_TASK, *attach_to(faulty)])
    assert (result.termination_reason, result.reward) == ("user_stop", 0.0)
    assert tool_calls(result, "user") == []
    assert tool_calls(result, "assistant") == ["send_payment_request", "resume_line"]
    assert [m["content"] for m in result.messages if m["role"] == "user"].count(DEVICE_DONE) == 2
    unmet = [check["env_assertion"]["func_name"] for check in result.reward_info["env_assertions"] if not check["met"]]
    assert "assert_service_status" in unmet  # the phone has no service
    served = stats(faulty["user"])
    assert (served["fault_user_skip_device"], served["user_device_turns"]) == (2, 2)
    counts = (metrics.injected_faults or {})["user"]
    assert (counts.user_skip_device, counts.user_device_turns) == (2, 2)


def test_a_withholding_user_opens_without_its_reason_for_calling(tmp_path, compose_cfg, attach_to, oracle_faults):
    """The oracle assistant knows the gold actions and does not need the reason: still 1.0."""
    faulty = oracle_faults(user={"user_withhold_rate": 1.0})
    result, metrics = run_one(tmp_path, compose_cfg, ["tasks.end=1", *attach_to(faulty)])
    opening = next(m["content"] for m in result.messages if m["role"] == "user")
    assert opening == WITHHELD_OPENING
    assert result.reward == 1.0
    served = stats(faulty["user"])
    assert (served["fault_user_withhold"], served["user_openings"]) == (1, 1)
    assert (metrics.injected_faults or {})["user"].user_withhold == 1


def test_each_user_reply_says_which_fault_may_spoil_it():
    """The steps of the user's script; retail's user (the assistant takes every gold action in
    its first turn) has no turn midway, so it never stops early against the oracle assistant."""
    act = lambda i, who: SimpleNamespace(name=f"act_{i}", arguments={}, requestor=who)  # noqa: E731
    opening = SimpleNamespace(reason_for_call="My phone has no data.")

    def task(*requestors: str) -> SimpleNamespace:
        actions = [act(i, who) for i, who in enumerate(requestors)]
        return SimpleNamespace(
            evaluation_criteria=SimpleNamespace(actions=actions, communicate_info=[]),
            user_scenario=SimpleNamespace(instructions=opening),
        )

    said = lambda text: [{"role": "assistant", "content": text}, {"role": "user", "content": "Next?"}]  # noqa: E731
    call = {"role": "assistant", "tool_calls": [{"function": {"name": "act"}}]}
    greeting = [{"role": "user", "content": "Hi!"}]
    retail = task("assistant", "assistant")
    assert user_reply(retail, greeting).user_step == UserStep.opening
    assert user_reply(retail, greeting + said("My phone has no data.")).user_step == UserStep.last
    dual = task("user", "assistant", "user", "user", "assistant")
    assert user_reply(dual, greeting).user_step == UserStep.device_turn
    assert user_reply(dual, [*greeting, call]).user_step == UserStep.opening
    turn_2 = [*greeting, call, *said("My phone has no data.")]
    assert user_reply(dual, turn_2).user_step == UserStep.device_turn
    assert user_reply(dual, [*turn_2, call]).user_step == UserStep.device
    assert user_reply(dual, [*turn_2, call, call]).user_step == UserStep.midway
    # A turn that ended with its device actions not taken skipped them: they are never taken.
    skipped = [*turn_2, *said(DEVICE_DONE)]
    assert user_reply(dual, skipped).content == "Thank you, that is all. ###STOP###"


# Without user faults, the other faults of a seeded oracle user fall request by request as they
# did before user faults existed: pinned from the oracle of commit 1d2263c, which had none.
OTHER_FAULTS = {
    "error_rate": 0.1,
    "malformed_rate": 0.05,
    "empty_rate": 0.15,
    "unhelpful_rate": 0.3,
    "bad_arguments_rate": 0.3,
}
PINNED_OUTCOMES = "..3b.e..euebub.eb.b.u....e.u...eu..ubue."
PINNED_STATS = {
    "requests": 40,
    "answered": 39,
    "text_replies": 19,
    "tool_call_replies": 13,
    "ok": 19,
    "fault_error": 1,
    "fault_empty": 7,
    "fault_unhelpful": 7,
    "fault_bad_arguments": 6,
}
DUAL_TASK_ID = "[service_issue]overdue_bill_suspension|unseat_sim_card[PERSONA:Easy]"


def user_requests() -> list[list[dict]]:
    """The user's requests in telecom task 11, one at each step of its script (the roles as tau2
    flips them for the user: its own messages are the "assistant"'s)."""

    def acted(name: str) -> list[dict]:
        function = {"name": name, "arguments": "{}"}
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": name, "type": "function", "function": function}],
            },
            {"role": "tool", "tool_call_id": name, "content": "done"},
        ]

    def said(text: str) -> list[dict]:
        return [{"role": "assistant", "content": text}, {"role": "user", "content": "Please do this on your phone."}]

    opening = [{"role": "user", "content": "Hi! How can I help you today?"}]
    turn_2 = opening + said("No service.")
    paid = turn_2 + acted("make_payment")
    turn_3 = paid + said(DEVICE_DONE)
    return [opening, turn_2, paid, turn_3, turn_3 + acted("reboot_device") + acted("reseat_sim_card")]


def outcomes(endpoint: Endpoint, rounds: int) -> str:
    """The user oracle's answers to `rounds` times `user_requests()`, one character each: 5 or 3
    for HTTP 500 or 503, m malformed, e empty, u unhelpful, b bad arguments, . on script."""
    headers = {
        **EpisodeTag("telecom", DUAL_TASK_ID, 0, "user").headers(),
        "Authorization": f"Bearer {endpoint.api_key}",
    }
    seen = ""
    for messages in user_requests() * rounds:
        body = {"model": endpoint.model, "messages": messages}
        answer = httpx.post(f"{endpoint.base_url}/chat/completions", json=body, headers=headers, timeout=30)
        if answer.status_code != 200:
            seen += str(answer.status_code)[-1]
            continue
        try:
            message = answer.json()["choices"][0]["message"]
        except ValueError:
            seen += "m"
            continue
        content, calls = message.get("content"), message.get("tool_calls") or []
        try:
            [json.loads(call["function"]["arguments"]) for call in calls]
        except ValueError:
            seen += "b"
            continue
        seen += "e" if not content and not calls else "u" if content and "not sure" in content else "."
    return seen


def test_without_user_faults_the_other_faults_fall_as_before(oracle_faults):
    faulty = oracle_faults(user={**OTHER_FAULTS, "seed": 5})
    assert outcomes(faulty["user"], rounds=8) == PINNED_OUTCOMES
    served = stats(faulty["user"])
    assert {key: value for key, value in served.items() if key in PINNED_STATS} == PINNED_STATS
    assert not [key for key in served if key.startswith("fault_user_")]
