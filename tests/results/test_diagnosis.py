"""results/diagnosis.py: why a conversation failed, read from its record alone.

Every record here is real: a conversation the oracle played through tau2's Orchestrator against
the session's oracle servers (passing ones, and ones the oracle's injected faults, tau2's limits
or a failing server ended), or such a passing conversation changed the way an agent gets things
wrong (a write dropped, an argument changed, a call added, moved or cut off), its tool results
answered again by a fresh tau2 environment and the whole scored again by tau2's own evaluation
(`bench.tau2_scoring.evaluate`). No reward or check is computed by the tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import litellm
import pytest

from tau_exp.bench import EpisodeSpec, episode_spec, load_tasks, tau2_scoring
from tau_exp.bench.episode import Episode
from tau_exp.bench.tau2 import run_episode
from tau_exp.config import Benchmark, to_experiment_config
from tau_exp.endpoint import Endpoint
from tau_exp.llm import chat
from tau_exp.llm.settings import Retry
from tau_exp.llm.tags import ROLE_HEADER
from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results import diagnosis
from tau_exp.results.diagnosis import (
    RULES,
    Category,
    DeviationKind,
    Diagnosis,
    GoldAction,
    Party,
    ToolKind,
    category_counts,
    diagnose,
    domain_tools,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "diagnosis.md"

# The tasks the changes are made to (tau2's test splits): retail 32 has three gold writes (two
# cancellations, then a return) and a number to communicate; airline 32 updates one reservation's
# flights twice, so their order decides the final state; this telecom task has the user toggle
# two settings on their phone before the assistant enables roaming.
RETAIL = ("retail", "32")
AIRLINE = ("airline", "32")
TELECOM = (
    "telecom",
    "[mobile_data_issue]airplane_mode_on|data_saver_mode_on|user_abroad_roaming_disabled_on[PERSONA:None]",
)


@cache
def task(domain: str, task_id: str) -> Any:
    return {t.id: t for t in load_tasks(Benchmark.tau2, domain, "test")}[task_id]


@pytest.fixture(scope="module")
def run(oracle_servers, compose_cfg) -> Callable[..., EpisodeResult]:
    """`run((domain, task_id), servers=None, **changes)`: one real episode against the session's
    oracle servers (or `servers`), with the spec's fields changed as given."""
    experiment = to_experiment_config(compose_cfg())

    def episode(which: tuple[str, str], servers: dict[str, Endpoint] | None = None, **changes) -> EpisodeResult:
        return run_episode(spec(experiment, which, servers or oracle_servers, **changes))

    return episode


def spec(experiment, which: tuple[str, str], servers: dict[str, Endpoint], **changes) -> EpisodeSpec:
    domain, task_id = which
    base = episode_spec(experiment, task(domain, task_id), 0, 1, servers["assistant"], servers["user"])
    return dataclasses.replace(base, domain=domain, retry=Retry(2, 0.01, 30.0), **changes)


@pytest.fixture(scope="module")
def passed(run) -> dict[tuple[str, str], EpisodeResult]:
    """The oracle's conversation of each task: scored 1.0 by tau2."""
    return {which: run(which) for which in (RETAIL, AIRLINE, TELECOM)}


def rescored(which: tuple[str, str], messages: list[dict[str, Any]], termination: str = "user_stop") -> EpisodeResult:
    """A conversation as it would have gone with these messages: each tool call answered by a
    fresh tau2 environment of the task (the given tool messages are dropped), then scored by
    tau2's own evaluation, as bench/tau2.py records an episode. It also checks that the gold
    actions' matching in diagnosis.py agrees with every one of tau2's action checks."""
    from tau2.data_model.message import ToolCall
    from tau2.data_model.simulation import SimulationRun
    from tau2.registry import registry

    domain, _ = which
    the_task = task(*which)
    environment = registry.get_env_constructor(domain)()
    initial = the_task.initial_state
    environment.set_state(
        initial.initialization_data if initial else None, initial.initialization_actions if initial else None, []
    )
    conversation: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            continue
        conversation.append(message)
        for call in message.get("tool_calls") or []:
            conversation.append(environment.get_response(ToolCall(**call)).model_dump(mode="json"))
    simulation = SimulationRun.model_validate(
        dict(
            id=str(uuid.uuid4()),
            task_id=the_task.id,
            start_time="2026-01-01T00:00:00",
            end_time="2026-01-01T00:01:00",
            duration=60.0,
            termination_reason=termination,
            messages=conversation,
        )
    )
    reward_info = tau2_scoring.evaluate(simulation, the_task, domain)
    result = EpisodeResult(
        task_id=the_task.id,
        trial=0,
        seed=1,
        status=EpisodeStatus.scored,
        reward=reward_info.reward,
        termination_reason=termination,
        reward_info=reward_info.model_dump(mode="json"),
        messages=[m.model_dump(mode="json", exclude={"raw_data"}) for m in simulation.messages],
    )
    calls = [c for m in result.messages for c in m.get("tool_calls") or []]
    for check in (result.reward_info or {}).get("action_checks") or []:
        gold = GoldAction.model_validate(check["action"])
        assert any(gold.matches(c["name"], c["arguments"]) for c in calls) == check["action_match"], check
    return result


def call(name: str, arguments: dict[str, Any], party: str = "assistant") -> dict[str, Any]:
    """A message of one tool call, as tau2 records it."""
    return {
        "role": party,
        "content": None,
        "tool_calls": [
            {"id": f"call_{uuid.uuid4().hex[:12]}", "name": name, "arguments": arguments, "requestor": party}
        ],
    }


def said(party: str, content: str) -> dict[str, Any]:
    return {"role": party, "content": content, "tool_calls": None}


def at(messages: list[dict[str, Any]], name: str, nth: int = 0) -> int:
    """The index of the nth message that calls `name`."""
    return [i for i, m in enumerate(messages) if any(c["name"] == name for c in m.get("tool_calls") or [])][nth]


def with_arguments(message: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    """The message's (single) tool call with these arguments changed."""
    (tool_call,) = message["tool_calls"]
    return {**message, "tool_calls": [{**tool_call, "arguments": {**tool_call["arguments"], **arguments}}]}


def diagnosed(which: tuple[str, str], result: EpisodeResult) -> Diagnosis:
    found = diagnose(result, task(*which), domain_tools(which[0]))
    assert found is not None
    return found


# The tools and the shared constants.


def test_domain_tools_are_tau2s_tool_types_and_owners():
    """Each tool's kind is tau2's ToolType, its owner the party whose toolkit has it (telecom's
    device tools are the user's), its arguments those of its schema; a domain tau2 does not
    have gives None."""
    retail = domain_tools("retail")
    assert retail is not None
    assert (retail.kind("cancel_pending_order"), retail.kind("get_user_details"), retail.kind("calculate")) == (
        ToolKind.write,
        ToolKind.read,
        ToolKind.generic,
    )
    cancel = retail.get("cancel_pending_order")
    assert cancel is not None and set(cancel.required) == {"order_id", "reason"}
    assert cancel.parameter_types["order_id"] == "string"
    telecom = domain_tools("telecom")
    assert telecom is not None
    toggle, roaming = telecom.get("toggle_airplane_mode"), telecom.get("enable_roaming")
    assert toggle is not None and (toggle.owner, toggle.kind) == (Party.user, ToolKind.write)
    assert roaming is not None and roaming.owner == Party.assistant
    assert domain_tools("banking_knowledge") is None


def test_the_markers_are_the_model_clients():
    """diagnosis.py reads what llm/chat.py writes (it may not import it): the key of arguments
    that were not a JSON object, and every wording of a context overflow."""
    assert diagnosis.UNPARSED_ARGUMENTS == chat.UNPARSED_ARGUMENTS
    assert set(chat._OVERFLOW_MARKERS) <= set(diagnosis.CONTEXT_MARKERS)


def test_the_decision_list_is_the_docs_table():
    """docs/diagnosis.md's table is RULES: the same categories in the same order, each with the
    same rule and tau2 review tag."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in DOCS.read_text().splitlines()
        if re.match(r"^\|\s*\d+\s*\|", line)
    ]
    documented = [(int(n), category.strip("`"), rule, tag.strip("`")) for n, category, rule, tag in rows]
    assert documented == [
        (n, rule.category.value, rule.when, rule.tau2_review_tag or "—") for n, rule in enumerate(RULES, 1)
    ]
    assert [rule.category for rule in RULES] == list(Category)


# Passing conversations, and the gold actions.


def test_a_passed_conversation_has_no_diagnosis(passed):
    """The oracle's conversations pass (reward 1, ended by the user's stop): no diagnosis, and
    nothing to count."""
    for which, result in passed.items():
        assert (result.reward, result.termination_reason) == (1.0, "user_stop"), which
        assert diagnose(result, task(*which), domain_tools(which[0])) is None
    assert category_counts(diagnose(r) for r in passed.values()) == {}


def test_a_changed_write_argument_is_the_first_decisive_deviation(passed):
    """The first cancellation made with another reason: the database differs, and the
    diagnosis names that call's message as the first decisive deviation from gold action 32_8
    (not the later writes, which match), and which of tau2's checks failed."""
    messages = list(passed[RETAIL].messages)
    first = at(messages, "cancel_pending_order")
    messages[first] = with_arguments(messages[first], reason="ordered by mistake")
    result = rescored(RETAIL, messages)
    assert result.reward == 0.0

    found = diagnosed(RETAIL, result)
    assert found.category == Category.tool_call_argument_error
    deviation = found.deviation
    assert deviation is not None and deviation.kind == DeviationKind.wrong_arguments
    assert deviation.turn == first == at(result.messages, "cancel_pending_order")
    assert deviation.call is not None and deviation.call.arguments == {
        "order_id": "#W9373487",
        "reason": "ordered by mistake",
    }
    assert deviation.gold is not None and (deviation.gold.action_id, deviation.gold.arguments["reason"]) == (
        "32_8",
        "no longer needed",
    )
    assert found.checks is not None and found.checks.failed == ["DB"]  # retail's reward basis: DB, COMMUNICATE
    assert found.checks.failed_outside_basis == ["ACTION 32_8 cancel_pending_order (assistant)"]
    assert [(a.action_id, a.requestor, a.matched) for a in found.checks.actions if a.kind == ToolKind.write] == [
        ("32_8", Party.assistant, False),
        ("32_10", Party.assistant, True),
        ("32_12", Party.assistant, True),
    ]
    assert found.read_only_deviations == [] and found.tool_errors.rejected == []


def test_read_only_calls_are_counted_apart_and_never_decisive(passed):
    """Reads no gold action has (a product looked up, a user's details asked twice more) added
    to the failing conversation above: counted as read-only deviations, the identical ones as
    repeated calls, while the first decisive deviation and the category stay the write's."""
    messages = list(passed[RETAIL].messages)
    first = at(messages, "cancel_pending_order")
    messages[first] = with_arguments(messages[first], reason="ordered by mistake")
    details = call("get_user_details", {"user_id": "olivia_lopez_3865"})
    messages[first:first] = [call("get_product_details", {"product_id": "9523456873"}), details, details]
    result = rescored(RETAIL, messages)

    found = diagnosed(RETAIL, result)
    assert found.category == Category.tool_call_argument_error
    assert found.deviation is not None and found.deviation.turn == at(result.messages, "cancel_pending_order")
    assert [(r.name, r.arguments) for r in found.read_only_deviations] == [
        ("get_product_details", {"product_id": "9523456873"})
    ]
    repeated = [(r.arguments, len(r.turns)) for r in found.tool_errors.repeated if r.name == "get_user_details"]
    assert repeated == [({"user_id": "olivia_lopez_3865"}, 3)]  # the gold one and the two added


def test_a_write_never_made_is_a_missed_required_action(passed):
    """The return (the last gold write) dropped, the assistant then saying it is done: the
    first decisive deviation is gold action 32_12 never made, with no message of its own."""
    messages = list(passed[RETAIL].messages)
    del messages[at(messages, "return_delivered_order_items")]
    found = diagnosed(RETAIL, rescored(RETAIL, messages))
    assert found.category == Category.missed_required_action
    assert found.deviation is not None
    assert (found.deviation.kind, found.deviation.turn, found.deviation.call) == (DeviationKind.missing, None, None)
    assert found.deviation.gold is not None and found.deviation.gold.action_id == "32_12"
    assert found.ending.early is None


def test_an_extra_write_is_an_irrelevant_tool_call_or_without_tool_kinds_a_wrong_final_state(passed):
    """A write no gold action asks for (the user's address changed) before the assistant's last
    reply: the first decisive deviation, an irrelevant tool call. Without the domain's tools
    nothing tells a write from a read, so the same record is what tau2's checks say: the
    database differs though every gold action matched — a wrong final state."""
    messages = list(passed[RETAIL].messages)
    address = {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX", "country": "USA"}
    messages.insert(-2, call("modify_user_address", {"user_id": "olivia_lopez_3865", **address, "zip": "78701"}))
    result = rescored(RETAIL, messages)

    found = diagnosed(RETAIL, result)
    assert found.category == Category.irrelevant_tool_call
    assert found.deviation is not None and found.deviation.kind == DeviationKind.extra_write
    assert found.deviation.turn == at(result.messages, "modify_user_address")
    assert found.deviation.gold is None  # every gold write was made

    blind = diagnose(result, task(*RETAIL), None)
    assert blind is not None and blind.category == Category.wrong_final_state
    assert blind.deviation is None and blind.checks is not None and blind.checks.failed == ["DB"]
    assert any("tools are not known" in note for note in blind.notes)


@pytest.mark.parametrize(
    "arguments, category, detail",
    [
        ({"item_ids": ["0000000000"]}, Category.tool_call_argument_error, None),
        ({"payment_method_id": None}, Category.tool_call_schema_error, "payment_method_id not string"),
        (None, Category.tool_call_schema_error, "not a JSON object"),
    ],
    ids=["an item the order does not have", "a wrong type", "arguments that are not JSON"],
)
def test_a_gold_write_only_attempted_is_an_argument_or_schema_error(passed, arguments, category, detail):
    """The return attempted with arguments the environment rejects, and never made: the gold
    write is missing with one attempt, and the category says why the attempt failed — values
    the environment refused (an argument error) or arguments that do not fit the tool's schema
    (a schema error: a wrong type, or what tau_exp's model client keeps of arguments that were
    not a JSON object)."""
    messages = list(passed[RETAIL].messages)
    index = at(messages, "return_delivered_order_items")
    if arguments is None:
        (tool_call,) = messages[index]["tool_calls"]
        raw = str(tool_call["arguments"]) + ","  # what the oracle's bad_arguments fault sends
        messages[index] = {
            **messages[index],
            "tool_calls": [{**tool_call, "arguments": {chat.UNPARSED_ARGUMENTS: raw}}],
        }
    else:
        messages[index] = with_arguments(messages[index], **arguments)
    result = rescored(RETAIL, messages)

    found = diagnosed(RETAIL, result)
    assert found.category == category
    assert found.deviation is not None and found.deviation.kind == DeviationKind.missing
    assert found.deviation.attempts == 1 and found.deviation.call is not None
    assert found.deviation.call.turn == index
    assert [r.turn for r in found.tool_errors.rejected] == [index]
    assert [r.turn for r in found.tool_errors.malformed] == ([] if detail is None else [index])
    if detail is not None:
        assert detail in (found.tool_errors.malformed[0].detail or "")


@pytest.mark.parametrize("how", ["cut while the assistant acts", "transferred to a human"])
def test_a_conversation_that_ended_early_is_a_premature_termination(passed, how):
    """The conversation ended before the return: cut off by the user's stop while the assistant
    was still making calls, or the assistant transferring the user to a human instead (no gold
    action of this task is a transfer). The gold write is missing, and the ending says why it
    counts as early."""
    messages = list(passed[RETAIL].messages)
    index = at(messages, "return_delivered_order_items")
    if how == "cut while the assistant acts":
        messages = messages[:index]
        expected = "still acting"
    else:
        messages = [
            *messages[:index],
            call("transfer_to_human_agents", {"summary": "The user wants to return a delivered item."}),
            said("assistant", "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."),
            said("user", "###TRANSFER###"),
        ]
        expected = "transferred the user to a human agent"
    found = diagnosed(RETAIL, rescored(RETAIL, messages))
    assert found.category == Category.premature_termination
    assert found.ending.early is not None and expected in found.ending.early
    assert found.deviation is not None and found.deviation.gold is not None
    assert found.deviation.gold.action_id == "32_12"


def test_writes_out_of_gold_order_are_a_wrong_sequence(passed):
    """Airline 32 updates one reservation's flights twice; made in the other order, every gold
    write is made and no other, but the reservation ends with the first flights: the database
    differs, and the write made before its turn is named."""
    messages = list(passed[AIRLINE].messages)
    first, second = at(messages, "update_reservation_flights"), at(messages, "update_reservation_flights", 1)
    messages[first], messages[second] = messages[second], messages[first]
    result = rescored(AIRLINE, messages)
    assert result.reward == 0.0

    found = diagnosed(AIRLINE, result)
    assert found.category == Category.wrong_sequence
    assert found.deviation is None
    assert [(r.turn, r.arguments and r.arguments["flights"][0]["flight_number"]) for r in found.out_of_order] == [
        (first, "HAT041")
    ]


def test_information_not_said_is_communication_missed(passed):
    """Every write right, but the assistant's closing words without the number it had to say:
    the database matches, the communicate check fails."""
    messages = list(passed[RETAIL].messages)
    closing = max(i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("content"))
    assert "746342064230" in messages[closing]["content"]
    messages[closing] = said("assistant", "Your request is complete. Is there anything else I can help you with?")
    found = diagnosed(RETAIL, rescored(RETAIL, messages))
    assert found.category == Category.communication_missed
    assert found.checks is not None and found.checks.failed == ["COMMUNICATE '746342064230'"]
    assert found.deviation is None


def test_every_check_passed_with_a_lower_reward_is_partial_credit(passed):
    """A record whose reward basis counts a check its breakdown does not report (a results file
    of a tau2 that judges NL assertions, scored 0 by them, with the judge's checks left out):
    every check reported that counts passed, yet the reward is 0."""
    record = passed[RETAIL]
    reward_info = {**(record.reward_info or {}), "reward": 0.0, "reward_basis": ["DB", "COMMUNICATE", "NL_ASSERTION"]}
    imported = record.model_copy(update={"reward": 0.0, "reward_info": reward_info})
    found = diagnosed(RETAIL, imported)
    assert found.category == Category.partial_credit
    assert found.checks is not None and found.checks.failed == []


def test_the_assistant_calling_the_users_device_tool_is_another_partys_call(passed):
    """In telecom the user toggles airplane mode on their own phone; here the assistant calls
    that tool itself instead (tau2-bench #472) and the user never does. The environment rejects
    the assistant's call, the phone stays in airplane mode (tau2's environment assertions fail),
    and the user's gold write is missing, attempted only by the wrong party: a schema error (a
    tool the assistant does not have). Each gold action says whose it is."""
    messages = list(passed[TELECOM].messages)
    user_toggle = at(messages, "toggle_airplane_mode")
    del messages[user_toggle]
    messages.insert(at(messages, "enable_roaming") + 2, call("toggle_airplane_mode", {}, party="assistant"))
    result = rescored(TELECOM, messages)
    assert result.reward == 0.0

    found = diagnosed(TELECOM, result)
    assert found.category == Category.tool_call_schema_error
    turn = at(result.messages, "toggle_airplane_mode")
    assert [(r.turn, r.party, r.detail) for r in found.tool_errors.other_party] == [
        (turn, Party.assistant, "the user's tool")
    ]
    assert [r.turn for r in found.tool_errors.rejected] == [turn]
    assert found.deviation is not None and found.deviation.gold is not None
    assert (found.deviation.kind, found.deviation.gold.requestor) == (DeviationKind.missing, Party.user)
    assert found.checks is not None
    assert [(a.name, a.requestor) for a in found.checks.actions] == [
        ("toggle_airplane_mode", Party.user),
        ("toggle_data_saver_mode", Party.user),
        ("enable_roaming", Party.assistant),
    ]
    assert [c.met for c in found.checks.env_assertions] == [False, False]
    assert found.checks.failed == [
        "ENV_ASSERTION user: assert_mobile_data_status(expected_status=True)",
        "ENV_ASSERTION user: assert_internet_speed(expected_speed=200, expected_desc='excellent')",
    ]
    assert found.checks.failed_outside_basis == ["DB"]  # telecom's reward basis: ENV_ASSERTION


def test_a_v1_record_without_reward_info_degrades(passed):
    """A tau-bench v1 record: OpenAI-format messages (arguments as JSON text, tool results with
    no error flag), no reward breakdown, reward 0. On its own it is `other`, with notes saying
    what is unknown, its tool calls still read; with the task and the domain's tools the walk
    finds the gold write never made."""
    messages = list(passed[RETAIL].messages)
    del messages[at(messages, "return_delivered_order_items")]
    v1_messages = [
        {"role": "system", "content": "# Retail agent policy"},
        *as_openai(rescored(RETAIL, messages).messages),
    ]
    record = EpisodeResult(
        task_id="32",
        trial=0,
        seed=0,
        status=EpisodeStatus.scored,
        reward=0.0,
        termination_reason="user_stop",
        messages=v1_messages,
    )

    alone = diagnose(record)
    assert alone is not None and alone.category == Category.other
    assert (alone.checks, alone.deviation) == (None, None)
    assert len(alone.notes) == 3  # no breakdown, no gold actions, no tools
    assert [r.name for r in alone.tool_errors.repeated] == ["get_order_details"] * 3  # 32's gold reads each twice
    assert alone.tool_errors.rejected == [] and alone.tool_errors.malformed == []

    found = diagnosed(RETAIL, record)
    assert found.category == Category.missed_required_action
    assert found.deviation is not None and found.deviation.gold is not None
    assert found.deviation.gold.action_id == "32_12"


def as_openai(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tau2 messages as tau-bench v1 records them (litellm's OpenAI format)."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            converted.append({"role": "tool", "tool_call_id": message["id"], "content": message["content"]})
        elif message.get("tool_calls"):
            calls = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for c in message["tool_calls"]
            ]
            converted.append({"role": message["role"], "content": None, "tool_calls": calls})
        else:
            converted.append({"role": message["role"], "content": message["content"]})
    return converted


# Conversations the harness, the limits or a model ended.


def test_infra_and_harness_errors_are_their_own_categories(run, compose_cfg):
    """A dead assistant server (an infra error after retries, as a job records it) is `infra`;
    an exception in the harness (the record bench/episode.py makes of it) is `harness_error`;
    both say their error."""
    infra = run(RETAIL, assistant=Endpoint("http://127.0.0.1:9/v1", "oracle"))
    assert infra.status == EpisodeStatus.infra_error
    found = diagnose(infra, task(*RETAIL), domain_tools("retail"))
    assert found is not None and found.category == Category.infra
    assert found.ending.error_type == "InfraError" and "127.0.0.1:9" in (found.ending.error_message or "")

    experiment = to_experiment_config(compose_cfg())
    dead = {"assistant": Endpoint("http://127.0.0.1:9/v1", "oracle"), "user": Endpoint("http://127.0.0.1:9/v1", "o")}
    harness = Episode(spec(experiment, RETAIL, dead), "32", None).failed(RuntimeError("a bug"))
    found = diagnose(harness, task(*RETAIL), domain_tools("retail"))
    assert found is not None and (found.category, found.ending.error_type) == (Category.harness_error, "RuntimeError")


def test_tau2s_limits_are_step_limit_and_too_many_errors(run, oracle_faults):
    """Conversations tau2 ended at its limits: max_steps reached (run.max_steps=6), and every
    tool call malformed by the oracle's bad_arguments fault until run.max_errors=2 were
    rejected — those calls show as malformed and rejected."""
    steps = diagnose(run(RETAIL, max_steps=6), task(*RETAIL), domain_tools("retail"))
    assert steps is not None and steps.category == Category.step_limit
    assert steps.ending.termination_reason == "max_steps" and "6 steps" in (steps.ending.ended_by or "")

    faulty = oracle_faults(assistant={"bad_arguments_rate": 1.0})
    errors = diagnose(run(RETAIL, faulty, max_errors=2), task(*RETAIL), domain_tools("retail"))
    assert errors is not None and errors.category == Category.too_many_errors
    assert len(errors.tool_errors.rejected) == len(errors.tool_errors.malformed) == 2
    assert all("not a JSON object" in (r.detail or "") for r in errors.tool_errors.malformed)


@pytest.mark.parametrize(
    "role, category", [("assistant", Category.agent_error), ("user", Category.user_error)], ids=["agent", "user"]
)
def test_a_models_empty_reply_is_that_roles_error(run, oracle_faults, role, category):
    """The oracle's empty-reply fault on one side: the conversation ends as that side's error
    (its ended_by says so), and the category is that side's."""
    result = run(RETAIL, oracle_faults(**{role: {"empty_rate": 1.0}}))
    found = diagnose(result, task(*RETAIL), domain_tools("retail"))
    assert found is not None and found.category == category
    assert "empty reply" in (found.ending.ended_by or "")


def test_a_context_overflow_is_the_context_limit(run, monkeypatch):
    """The assistant's server refusing a prompt over its context (litellm's
    ContextWindowExceededError, as it raises on vLLM's answer) once the conversation has grown:
    the model client ends the conversation as the agent's error, its cause in ended_by, and the
    diagnosis reads it as the context limit, not an ordinary agent error."""
    completion = litellm.completion

    def overflowing(**kwargs):
        if kwargs["extra_headers"][ROLE_HEADER] == "assistant" and len(kwargs["messages"]) > 6:
            raise litellm.exceptions.ContextWindowExceededError(
                message="This model's maximum context length is 32768 tokens. However, you requested 33012 tokens",
                model=kwargs["model"],
                llm_provider="hosted_vllm",
            )
        return completion(**kwargs)

    monkeypatch.setattr(litellm, "completion", overflowing)
    result = run(RETAIL)
    assert result.termination_reason == "agent_error"
    found = diagnose(result, task(*RETAIL), domain_tools("retail"))
    assert found is not None and found.category == Category.context_limit
    assert found.ending.context_exceeded and "ContextWindowExceededError" in (found.ending.ended_by or "")


def test_category_counts_follow_the_decision_list(passed):
    """Counts per category over diagnoses, in the decision list's order, passed conversations
    (None) and empty categories left out: what metrics.json and the report will show."""
    messages = list(passed[RETAIL].messages)
    del messages[at(messages, "return_delivered_order_items")]
    missed = diagnosed(RETAIL, rescored(RETAIL, messages))
    infra = diagnose(EpisodeResult(task_id="32", trial=1, seed=0, status=EpisodeStatus.infra_error))
    counts = category_counts([missed, None, infra, missed])
    assert list(counts.items()) == [(Category.infra, 1), (Category.missed_required_action, 2)]


def test_a_breakdown_of_another_shape_degrades_to_a_note(passed):
    """A reward breakdown diagnosis.py cannot read (an action check without its action's name,
    as another tau2 version might write): no crash, the checks unknown and said so, the rest of
    the diagnosis (the walk, the tool errors) still made."""
    record = passed[RETAIL]
    reward_info = {**(record.reward_info or {}), "action_checks": [{"action": {"arguments": {}}, "action_match": 0}]}
    messages = list(record.messages)
    del messages[at(messages, "return_delivered_order_items")]
    odd = rescored(RETAIL, messages).model_copy(update={"reward_info": reward_info})
    found = diagnosed(RETAIL, odd)
    assert found.checks is None and any("could not be read" in note for note in found.notes)
    assert found.category == Category.missed_required_action  # from the walk
