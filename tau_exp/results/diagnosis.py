"""Why a conversation failed, from what its record already holds: a `Diagnosis` of every failed
or ended-early (task, trial), with no model.

This is the first of the three layers of failure analysis (DESIGN.md, "Why a conversation
failed"): the cheapest and most certain. It reads only what an `EpisodeResult` records — the
conversation (tau2 messages), tau2's reward breakdown (`reward_info`), the termination reason,
`ended_by` and the error — with the task's gold actions and the domain's tools. So it computes
the same on read for every job directory, old ones included, for tau-bench v1 records and for
imported tau2 results files; what a record does not hold is said in `notes`, never guessed.

What a diagnosis says:

- `checks`: which of the benchmark's checks failed, from tau2's breakdown (the database check,
  each gold action matched or not and whose it is, the information to communicate, the NL and
  environment assertions, the reward basis).
- `ending`: how the conversation ended (termination reason, `ended_by`, the error) and whether
  it ended early (a transfer to a human, the assistant's own stop, the user's transfer or
  out-of-scope stop, or an end while the assistant was still acting).
- `deviation`: the first decisive deviation from the gold actions (SABER, arXiv 2512.07850): the
  first state-changing call (a WRITE tool in tau2's `ToolType`) that no pending gold write
  matches, or else the first gold write never made. Read-only calls that no gold action
  matches are counted apart (`read_only_deviations`): SABER found that they barely change the
  odds of success, while a mutating one cuts them by up to 96%.
- `tool_errors`: calls the environment rejected, malformed arguments, calls to the other
  party's tools (telecom: the assistant calling the user's device tools, or the reverse),
  tools the domain does not have, and repeated identical calls.
- `category`: one of `Category`, by the first rule of `RULES` that applies (an ordered
  decision list; docs/diagnosis.md shows it as a table, and a test holds the two equal).

`diagnose` is pure: the tools' kinds come in as a `DomainTools` (`domain_tools(domain)` reads
them once per process from tau2's environment), the gold actions from the task.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tau_exp.config import Benchmark
from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus

# tau_exp's model client keeps tool-call arguments that are not a JSON object under this one key
# (llm/chat.py's UNPARSED_ARGUMENTS; results may not import the model client, a test holds the
# two equal), so that the environment rejects the call as tau2 would count it.
UNPARSED_ARGUMENTS = "__unparsed_arguments__"

# How a model's context overflow reads in `ended_by` or the error: litellm's exception name, and
# the wordings llm/chat.py recognises from vLLM and other servers (a test holds them in step).
CONTEXT_MARKERS = (
    "contextwindowexceedederror",
    "context length",
    "context window",
    "maximum context",
    "max_model_len",
    "too many tokens",
)

TRANSFER_TOOL = "transfer_to_human_agents"  # retail, airline and telecom's hand-over to a human
USER_EARLY_STOPS = ("###TRANSFER###", "###OUT-OF-SCOPE###")  # tau2.user.base: TRANSFER, OUT_OF_SCOPE
STOPS = ("user_stop", "agent_stop")  # the terminations tau2 scores on the outcome


class Party(str, Enum):
    """Who makes a tool call or owns a tool: tau2's `requestor`."""

    assistant = "assistant"
    user = "user"


class ToolKind(str, Enum):
    """tau2's `tau2.environment.toolkit.ToolType`: only `write` tools change the state."""

    read = "read"
    write = "write"
    think = "think"
    generic = "generic"


class ToolSpec(BaseModel):
    """One tool of a domain: what it does to the state, whose it is, and its arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ToolKind
    owner: Party
    parameter_types: dict[str, str | None] = Field(
        description="each argument and its JSON type (None: not one plain type, e.g. optional)"
    )
    required: tuple[str, ...] = ()


class DomainTools(BaseModel):
    """A domain's tools, both parties' (the user's device tools in telecom), by name."""

    model_config = ConfigDict(frozen=True)

    domain: str
    tools: dict[str, ToolSpec]

    def get(self, name: str) -> ToolSpec | None:
        return self.tools.get(name)

    def kind(self, name: str) -> ToolKind | None:
        spec = self.tools.get(name)
        return spec.kind if spec else None


@functools.cache
def domain_tools(domain: str) -> DomainTools | None:
    """The tools of a tau2 domain, read from a freshly built tau2 environment (its toolkits'
    `tool_type` and OpenAI schemas) once per process; None for a domain this tau2 does not have
    (an imported file of another tau2 version, a tau-bench v1 env: its tools have no kinds)."""
    from tau2.registry import registry

    try:
        environment = registry.get_env_constructor(domain)()
    except KeyError:
        return None
    tools: dict[str, ToolSpec] = {}
    for owner, toolkit in ((Party.assistant, environment.tools), (Party.user, environment.user_tools)):
        if toolkit is None:
            continue
        for name, tool in toolkit.get_tools().items():
            parameters = tool.openai_schema["function"].get("parameters") or {}
            properties = parameters.get("properties") or {}
            tools[name] = ToolSpec(
                name=name,
                kind=ToolKind(toolkit.tool_type(name).value),
                owner=owner,
                parameter_types={
                    argument: schema.get("type") if isinstance(schema.get("type"), str) else None
                    for argument, schema in properties.items()
                },
                required=tuple(parameters.get("required") or ()),
            )
    return DomainTools(domain=domain, tools=tools)


def tools_of(names: ConfigNames) -> DomainTools | None:
    """The tools of the domain a configuration ran: tau2's (`domain_tools`), none for tau-bench
    v1's envs (their tools have no kinds)."""
    return domain_tools(names.env) if names.bench == Benchmark.tau2 else None


class GoldAction(BaseModel):
    """One of the task's gold actions: the tool call the benchmark expects, and whose it is."""

    action_id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    requestor: Party = Party.assistant
    compare_args: list[str] | None = Field(None, description="the arguments compared (None: all the call's)")

    def matches(self, name: str, arguments: dict[str, Any] | None) -> bool:
        """Whether a call is this action, by tau2's own rule (`Action.compare_with_tool_call`:
        the same name, and equal values of `compare_args`, or of every argument the call has),
        so that a match here is a match in tau2's action checks."""
        if name != self.name or arguments is None:
            return False
        compared = list(arguments) if self.compare_args is None else self.compare_args
        return {k: v for k, v in arguments.items() if k in compared} == {
            k: v for k, v in self.arguments.items() if k in compared
        }


def gold_actions(task: object | None) -> list[GoldAction] | None:
    """A task's gold actions in order: a tau2 `Task`'s `evaluation_criteria.actions`, or a
    tau-bench v1 task's `actions` (v1's `respond` left out: it is the conversation, not a tool
    call). None when there is no task or it has no evaluation criteria."""
    if task is None:
        return None
    criteria = getattr(task, "evaluation_criteria", None)
    if criteria is not None:
        return [
            GoldAction(
                action_id=getattr(action, "action_id", None),
                name=action.name,
                arguments=dict(action.arguments or {}),
                requestor=Party(getattr(action, "requestor", "assistant")),
                compare_args=getattr(action, "compare_args", None),
            )
            for action in criteria.actions or []
        ]
    v1_task = getattr(task, "task", task)  # bench.tau_bench's IndexedTask holds v1's Task
    actions = getattr(v1_task, "actions", None)
    if actions is None:
        return None
    return [GoldAction(name=a.name, arguments=dict(a.kwargs or {})) for a in actions if a.name != "respond"]


# What a diagnosis says.


class ToolCallRef(BaseModel):
    """A tool call of the conversation, where it is (`turn`: its message's index in
    `EpisodeResult.messages`) and, for an error, what was wrong."""

    turn: int
    party: Party
    name: str
    arguments: dict[str, Any] | None = Field(description="None: the arguments were not a JSON object")
    detail: str | None = None


class RepeatedCall(BaseModel):
    """The same call (party, tool, arguments) made more than once."""

    party: Party
    name: str
    arguments: dict[str, Any] | None
    turns: list[int]


class ToolErrors(BaseModel):
    """The conversation's tool-use errors, each call where it was made."""

    rejected: list[ToolCallRef] = Field(default_factory=list, description="the environment answered with an error")
    malformed: list[ToolCallRef] = Field(
        default_factory=list, description="arguments not a JSON object, or failing the tool's schema (detail: how)"
    )
    other_party: list[ToolCallRef] = Field(
        default_factory=list, description="a tool of the other party (telecom: the assistant on the user's device)"
    )
    unknown_tool: list[ToolCallRef] = Field(default_factory=list, description="a tool neither party has")
    repeated: list[RepeatedCall] = Field(default_factory=list)


class ActionOutcome(BaseModel):
    """One gold action: matched by a call of the conversation or not, and whose it is."""

    action_id: str | None
    name: str
    arguments: dict[str, Any]
    requestor: Party
    kind: ToolKind | None = Field(None, description="its tool's kind (None: the domain's tools not known)")
    matched: bool


class CheckOutcome(BaseModel):
    """A check of tau2's breakdown other than the actions: what it checks, and whether it was met."""

    what: str
    met: bool


class Checks(BaseModel):
    """The benchmark's checks of the conversation, as the record has them."""

    reward_basis: list[str] | None = Field(None, description="what the reward is the product of (tau2's RewardType)")
    db_match: bool | None = Field(None, description="the final database equals the gold one's (None: not checked)")
    actions: list[ActionOutcome] = Field(default_factory=list)
    actions_matched_by: str | None = Field(
        None,
        description="'tau2' (its action checks), 'diagnosis' (tau2's rule applied here: tau2 computes no "
        "checks for a conversation that did not end by a stop), or None (no gold actions known)",
    )
    communicate: list[CheckOutcome] = Field(default_factory=list)
    nl_assertions: list[CheckOutcome] = Field(default_factory=list)
    env_assertions: list[CheckOutcome] = Field(default_factory=list)
    evaluated: bool = Field(
        description="the benchmark checked the outcome (tau2 checks nothing of a conversation that did not end "
        "by a stop: its reward is 0, with a note)"
    )
    note: str | None = Field(None, description="the benchmark's note, e.g. why it checked nothing")

    @property
    def failed(self) -> list[str]:
        """Each check not met that counts for the reward (is in the reward basis; every one when
        the basis is not known), in words: "DB", "COMMUNICATE '746342064230'", ..."""
        return [words for basis, words in self._failures() if self._counts(basis)]

    @property
    def failed_outside_basis(self) -> list[str]:
        """Each check not met that the reward does not count (retail's action checks; telecom's
        database check, where the basis is ENV_ASSERTION), in words."""
        return [words for basis, words in self._failures() if not self._counts(basis)]

    def _counts(self, basis: str) -> bool:
        return self.reward_basis is None or basis in self.reward_basis

    def _failures(self) -> list[tuple[str, str]]:
        """(the RewardType it belongs to, the check in words), for each check not met."""
        failures = [("DB", "DB")] if self.db_match is False else []
        if self.actions_matched_by == "tau2":  # matched here: not one of tau2's checks
            failures += [
                ("ACTION", " ".join(filter(None, ("ACTION", a.action_id, a.name, f"({a.requestor.value})"))))
                for a in self.actions
                if not a.matched
            ]
        failures += [("COMMUNICATE", f"COMMUNICATE {c.what!r}") for c in self.communicate if not c.met]
        failures += [("NL_ASSERTION", f"NL_ASSERTION {c.what!r}") for c in self.nl_assertions if not c.met]
        failures += [("ENV_ASSERTION", f"ENV_ASSERTION {c.what}") for c in self.env_assertions if not c.met]
        return failures


class Ending(BaseModel):
    """How the conversation ended."""

    status: EpisodeStatus
    termination_reason: str | None
    ended_by: str | None = Field(None, description="the record's ended_by: a model's fault, or the limit hit")
    error_type: str | None = None
    error_message: str | None = None
    context_exceeded: bool = Field(False, description="the cause says a model's context was exceeded")
    early: str | None = Field(None, description="why the conversation ended early, if it did")


class DeviationKind(str, Enum):
    wrong_arguments = "wrong_arguments"  # a write to a pending gold write's tool, with other arguments
    extra_write = "extra_write"  # a write no pending gold write asks for (an extra copy of one included)
    missing = "missing"  # a gold write never made


class Deviation(BaseModel):
    """The first decisive deviation from the gold actions (SABER): where, what was called, and
    the gold action it deviated from."""

    kind: DeviationKind
    turn: int | None = Field(description="the deviating call's message index (None: a gold write never made)")
    call: ToolCallRef | None = Field(
        description="the call that deviated; for a gold write never made, the last rejected attempt at its tool"
    )
    gold: GoldAction | None = Field(description="the gold write it deviated from (None: every gold write was made)")
    attempts: int = Field(0, description="a gold write never made: the rejected calls to its tool")


class Category(str, Enum):
    """Why a conversation failed, one per diagnosis (RULES decides; docs/diagnosis.md)."""

    infra = "infra"
    harness_error = "harness_error"
    context_limit = "context_limit"
    step_limit = "step_limit"
    too_many_errors = "too_many_errors"
    agent_error = "agent_error"
    user_error = "user_error"
    tool_call_schema_error = "tool_call_schema_error"
    tool_call_argument_error = "tool_call_argument_error"
    irrelevant_tool_call = "irrelevant_tool_call"
    premature_termination = "premature_termination"
    missed_required_action = "missed_required_action"
    wrong_sequence = "wrong_sequence"
    wrong_final_state = "wrong_final_state"
    communication_missed = "communication_missed"
    partial_credit = "partial_credit"
    other = "other"


class Diagnosis(BaseModel):
    """Why one (task, trial) failed or ended early: its category, and the evidence."""

    task_id: str
    trial: int
    reward: float | None
    category: Category
    ending: Ending
    checks: Checks | None = Field(description="None: the record has no reward breakdown")
    deviation: Deviation | None = Field(description="None: none found, or the gold actions or tool kinds unknown")
    out_of_order: list[ToolCallRef] = Field(
        default_factory=list, description="gold writes made before a gold write that comes earlier in the gold order"
    )
    read_only_deviations: list[ToolCallRef] = Field(
        default_factory=list,
        description="calls that change nothing (read, think, generic tools) which no gold action matches",
    )
    tool_errors: ToolErrors
    notes: list[str] = Field(default_factory=list, description="what the record or the inputs did not say")


# Reading a record.


@dataclass
class _Call:
    """A tool call of the conversation, with the environment's answer once paired."""

    turn: int
    party: Party
    call_id: str | None
    name: str
    arguments: dict[str, Any] | None  # None: not a JSON object
    raw_arguments: str | None  # as sent, when they were not a JSON object
    rejected: bool = False
    answered: bool = False

    @property
    def key(self) -> tuple[Party, str, str]:
        """What makes two calls the same call: party, tool and arguments."""
        if self.arguments is None:
            return (self.party, self.name, f"unparsed: {self.raw_arguments}")
        return (self.party, self.name, json.dumps(self.arguments, sort_keys=True, default=str))

    def ref(self, detail: str | None = None) -> ToolCallRef:
        """The call as a diagnosis names it; arguments that were not a JSON object are shown in
        `detail` unless it says something else."""
        if detail is None and self.arguments is None:
            detail = _excerpt(self.raw_arguments)
        return ToolCallRef(turn=self.turn, party=self.party, name=self.name, arguments=self.arguments, detail=detail)


def _excerpt(text: str | None, limit: int = 200) -> str | None:
    return None if text is None else text if len(text) <= limit else text[:limit] + "…"


def _arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A call's arguments as a dict, or None and the text sent (tau2's dict with tau_exp's
    unparsed key, or an OpenAI-format JSON string as tau-bench v1 records it)."""
    if isinstance(raw, dict):
        if set(raw) == {UNPARSED_ARGUMENTS}:
            return None, str(raw[UNPARSED_ARGUMENTS])
        return raw, None
    if raw is None or raw == "":
        return {}, None
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return None, str(raw)
    return (parsed, None) if isinstance(parsed, dict) else (None, str(raw))


def _read_calls(messages: Sequence[dict[str, Any]]) -> list[_Call]:
    """Every tool call in the conversation, in order, each paired with its tool message (by id,
    else the first unanswered call before it: tool messages follow their calls)."""
    calls: list[_Call] = []
    for turn, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in (Party.assistant.value, Party.user.value):
            for tool_call in message.get("tool_calls") or []:
                if not isinstance(tool_call, dict):
                    continue
                function = tool_call.get("function") or {}  # OpenAI's shape (tau-bench v1)
                arguments, raw = _arguments(tool_call.get("arguments", function.get("arguments")))
                party = tool_call.get("requestor") or role
                calls.append(
                    _Call(
                        turn=turn,
                        party=Party(party) if party in ("assistant", "user") else Party(role),
                        call_id=tool_call.get("id"),
                        name=str(tool_call.get("name") or function.get("name") or ""),
                        arguments=arguments,
                        raw_arguments=raw,
                    )
                )
        elif role == "tool":
            for answer in message.get("tool_messages") or [message]:  # a MultiToolMessage holds several
                answer_id = answer.get("id") or answer.get("tool_call_id")
                unanswered = [c for c in calls if not c.answered]
                call = next((c for c in unanswered if answer_id and c.call_id == answer_id), None) or next(
                    iter(unanswered), None
                )
                if call is None:
                    continue
                call.answered = True
                # tau2 says `error`; tau-bench v1 has no flag, its tools answer "Error: ...".
                call.rejected = (
                    bool(answer.get("error"))
                    if "error" in answer
                    else str(answer.get("content") or "").startswith("Error")
                )
    return calls


def _checks(
    result: EpisodeResult, gold: list[GoldAction] | None, calls: list[_Call], tools: DomainTools | None
) -> tuple[Checks | None, list[GoldAction] | None]:
    """The record's checks (None without a breakdown), and the gold actions they carry."""
    info = result.reward_info
    if not isinstance(info, dict):
        return None, None
    carried: list[GoldAction] | None = None
    action_checks = info.get("action_checks")
    actions: list[ActionOutcome] = []
    matched_by: str | None = None
    if isinstance(action_checks, list) and action_checks:
        carried = [GoldAction.model_validate(check["action"]) for check in action_checks]
        actions = [
            _outcome(action, bool(check.get("action_match")), tools)
            for action, check in zip(carried, action_checks, strict=True)
        ]
        matched_by = "tau2"
    # tau2's `info` (a note when it checked nothing), or tau-bench v1's RewardResult.info.
    extra = info.get("info")
    v1_info: dict[str, Any] = extra if isinstance(extra, dict) else {}
    if carried is None and isinstance(info.get("actions"), list):  # tau-bench v1's RewardResult.actions
        carried = [
            GoldAction(name=a["name"], arguments=a.get("kwargs") or {})
            for a in info["actions"]
            if isinstance(a, dict) and a.get("name") != "respond"
        ]
    known = gold if gold is not None else carried
    if not actions and known:
        # tau2 computes no checks for a conversation that did not end by a stop: its own rule, here.
        actions = [_outcome(action, any(action.matches(c.name, c.arguments) for c in calls), tools) for action in known]
        matched_by = "diagnosis"
    db_check = info.get("db_check")
    db_match = db_check.get("db_match") if isinstance(db_check, dict) else None
    if db_match is None and "r_actions" in v1_info:  # v1: the data hash check
        db_match = float(v1_info["r_actions"]) >= 1.0
    communicate = [
        CheckOutcome(what=str(check.get("info")), met=bool(check.get("met")))
        for check in info.get("communicate_checks") or []
    ]
    if not communicate and isinstance(v1_info.get("outputs"), dict):  # v1: the outputs to say
        communicate = [CheckOutcome(what=str(k), met=bool(v)) for k, v in v1_info["outputs"].items()]
    evaluated = any(
        info.get(key) is not None
        for key in ("reward_basis", "db_check", "action_checks", "communicate_checks", "env_assertions")
    ) or bool({"r_actions", "r_outputs"} & set(v1_info))
    checks = Checks(
        evaluated=evaluated,
        note=str(v1_info["note"]) if v1_info.get("note") else None,
        reward_basis=[str(b) for b in info["reward_basis"]] if isinstance(info.get("reward_basis"), list) else None,
        db_match=db_match,
        actions=actions,
        actions_matched_by=matched_by,
        communicate=communicate,
        nl_assertions=[
            CheckOutcome(what=str(check.get("nl_assertion")), met=bool(check.get("met")))
            for check in info.get("nl_assertions") or []
        ],
        env_assertions=[
            CheckOutcome(what=_env_assertion(check.get("env_assertion")), met=bool(check.get("met")))
            for check in info.get("env_assertions") or []
        ],
    )
    return checks, carried


def _outcome(action: GoldAction, matched: bool, tools: DomainTools | None) -> ActionOutcome:
    return ActionOutcome(
        action_id=action.action_id,
        name=action.name,
        arguments=action.arguments,
        requestor=action.requestor,
        kind=tools.kind(action.name) if tools else None,
        matched=matched,
    )


def _env_assertion(assertion: Any) -> str:
    """tau2's EnvAssertion in one line: `user: assert_mobile_data_status(expected_status=True)`."""
    if not isinstance(assertion, dict):
        return str(assertion)
    arguments = ", ".join(f"{k}={v!r}" for k, v in (assertion.get("arguments") or {}).items())
    return f"{assertion.get('env_type', '?')}: {assertion.get('func_name', '?')}({arguments})"


def _tool_errors(calls: list[_Call], tools: DomainTools | None) -> ToolErrors:
    errors = ToolErrors()
    same: dict[tuple[Party, str, str], list[_Call]] = defaultdict(list)
    for call in calls:
        same[call.key].append(call)
        if call.rejected:
            errors.rejected.append(call.ref())
        spec = tools.get(call.name) if tools else None
        if call.arguments is None:
            errors.malformed.append(call.ref(f"not a JSON object: {_excerpt(call.raw_arguments)}"))
        elif spec is not None and (problem := _schema_problem(call.arguments, spec)):
            errors.malformed.append(call.ref(problem))
        if tools is not None and spec is None:
            errors.unknown_tool.append(call.ref())
        elif spec is not None and spec.owner != call.party:
            errors.other_party.append(call.ref(f"the {spec.owner.value}'s tool"))
    errors.repeated = [
        RepeatedCall(party=party, name=name, arguments=repeats[0].arguments, turns=[c.turn for c in repeats])
        for (party, name, _), repeats in same.items()
        if len(repeats) > 1
    ]
    return errors


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _schema_problem(arguments: dict[str, Any], spec: ToolSpec) -> str | None:
    """What is wrong with the arguments by the tool's schema, at its top level (names, required,
    plain JSON types): the cheap part; the environment checks the rest and rejects the call."""
    problems = []
    if missing := [name for name in spec.required if name not in arguments]:
        problems.append(f"missing {', '.join(missing)}")
    if unknown := [name for name in arguments if name not in spec.parameter_types]:
        problems.append(f"unknown {', '.join(unknown)}")
    wrong = [
        f"{name} not {json_type}"
        for name, value in arguments.items()
        if (json_type := spec.parameter_types.get(name)) in _JSON_TYPES and not _JSON_TYPES[json_type](value)
    ]
    problems += wrong
    return "; ".join(problems) or None


@dataclass
class _Walk:
    deviation: Deviation | None = None
    out_of_order: list[ToolCallRef] = field(default_factory=list)
    read_only: list[ToolCallRef] = field(default_factory=list)


def _walk(calls: list[_Call], gold: list[GoldAction], tools: DomainTools) -> _Walk:
    """The conversation's calls in order against the gold actions (SABER's first decisive
    deviation). A call the environment rejected changed nothing: it is a tool-use error, not a
    deviation. A write that matches a pending gold write takes it, in any order (tau2's action
    checks are unordered, and its database check depends on order only where writes touch the
    same records); one taken before a gold write that comes earlier in the gold order and is
    taken later is noted as out of order."""
    walk = _Walk()
    gold_writes = [action for action in gold if tools.kind(action.name) == ToolKind.write]
    pending = list(range(len(gold_writes)))
    taken: list[tuple[int, _Call]] = []  # (gold write, the call that made it), in the conversation's order
    for call in calls:
        if call.rejected:
            continue
        if tools.kind(call.name) != ToolKind.write:
            if not any(action.matches(call.name, call.arguments) for action in gold):
                walk.read_only.append(call.ref())
            continue
        match = next((i for i in pending if gold_writes[i].matches(call.name, call.arguments)), None)
        if match is not None:
            pending.remove(match)
            taken.append((match, call))
            continue
        if walk.deviation is None:
            same_tool = next((i for i in pending if gold_writes[i].name == call.name), None)
            walk.deviation = Deviation(
                kind=DeviationKind.wrong_arguments if same_tool is not None else DeviationKind.extra_write,
                turn=call.turn,
                call=call.ref(),
                gold=gold_writes[same_tool if same_tool is not None else pending[0]] if pending else None,
            )
    walk.out_of_order = [
        call.ref()
        for position, (index, call) in enumerate(taken)
        if any(later < index for later, _ in taken[position:])
    ]
    if walk.deviation is None and pending:
        missing = gold_writes[pending[0]]
        attempts = [c for c in calls if c.rejected and c.name == missing.name]
        walk.deviation = Deviation(
            kind=DeviationKind.missing,
            turn=None,
            call=attempts[-1].ref() if attempts else None,
            gold=missing,
            attempts=len(attempts),
        )
    return walk


def _ended_early(result: EpisodeResult, calls: list[_Call], gold: list[GoldAction] | None) -> str | None:
    """Why the conversation ended before the assistant was done, if the record shows it."""
    if result.termination_reason == "agent_stop":
        return "the assistant ended the conversation itself (agent_stop)"
    transfer_is_gold = any(action.name == TRANSFER_TOOL for action in gold or [])
    transfer = next((c for c in calls if c.name == TRANSFER_TOOL and c.party == Party.assistant), None)
    if transfer is not None and not transfer_is_gold:
        return f"the assistant transferred the user to a human agent (message {transfer.turn})"
    participants = [
        (turn, m)
        for turn, m in enumerate(result.messages)
        if isinstance(m, dict) and m.get("role") in ("assistant", "user")
    ]
    users = [m for _, m in participants if m.get("role") == "user"]
    if users and (token := next((t for t in USER_EARLY_STOPS if t in str(users[-1].get("content") or "")), None)):
        return f"the user ended it with {token}"
    if result.termination_reason in STOPS and participants:
        turn, last = participants[-1]
        if last.get("role") == "assistant" and last.get("tool_calls"):
            return f"it ended while the assistant was still acting (its last message, {turn}, a tool call)"
    return None


def _context_exceeded(result: EpisodeResult) -> bool:
    cause = " ".join(filter(None, (result.ended_by, result.error.message if result.error else None))).lower()
    return any(marker in cause for marker in CONTEXT_MARKERS)


# The decision list.


@dataclass(frozen=True)
class _Facts:
    """What the rules decide on, read once from the record and the inputs."""

    result: EpisodeResult
    ending: Ending
    checks: Checks | None
    deviation: Deviation | None
    deviation_known: bool  # the walk ran (gold actions and the tools' kinds known)
    out_of_order: bool
    attempt_problem: bool  # a missing gold write's rejected attempts were schema errors or the wrong party's

    @property
    def state_wrong(self) -> bool | None:
        """Whether a state check of the reward basis failed (None: not known). The database
        counts when DB is in the basis, environment assertions when ENV_ASSERTION is, the
        actions when ACTION is (telecom's basis is ENV_ASSERTION, where the database may differ
        and the reward still be 1)."""
        if self.checks is None:
            return None
        basis = set(self.checks.reward_basis or ("DB", "ENV_ASSERTION"))
        known = []
        if "DB" in basis and self.checks.db_match is not None:
            known.append(not self.checks.db_match)
        if "ENV_ASSERTION" in basis and self.checks.env_assertions:
            known.append(any(not c.met for c in self.checks.env_assertions))
        if "ACTION" in basis and self.checks.actions_matched_by == "tau2":
            known.append(any(not a.matched for a in self.checks.actions))
        return any(known) if known else None

    def decisive(self, *kinds: DeviationKind) -> bool:
        """The first decisive deviation is of these kinds, and the final state is wrong or not known."""
        return self.deviation is not None and self.deviation.kind in kinds and self.state_wrong is not False

    @property
    def missing_unattempted(self) -> bool:
        return self.decisive(DeviationKind.missing) and self.deviation is not None and self.deviation.attempts == 0


@dataclass(frozen=True)
class Rule:
    """One rule of the decision list: the category it gives, when (in words, as
    docs/diagnosis.md's table says it), and the tag of tau2's LLM review it maps to (None: no
    counterpart there)."""

    category: Category
    when: str
    tau2_review_tag: str | None
    applies: Callable[[_Facts], bool]


def _terminated(*reasons: str) -> Callable[[_Facts], bool]:
    return lambda facts: facts.result.termination_reason in reasons


def _unmatched_action_counts(facts: _Facts) -> bool:
    """A gold action tau2 found unmatched, where that explains the failure: ACTION is in the
    reward basis, or the walk could not run (the tools' kinds or the gold actions unknown)."""
    checks = facts.checks
    if checks is None or checks.actions_matched_by != "tau2" or all(a.matched for a in checks.actions):
        return False
    return "ACTION" in (checks.reward_basis or ()) or (not facts.deviation_known and facts.state_wrong is not False)


RULES: tuple[Rule, ...] = (
    Rule(
        Category.infra,
        "status is infra_error: a model server failed after retries (not scored, rerun on resume)",
        None,
        lambda f: f.result.status == EpisodeStatus.infra_error,
    ),
    Rule(
        Category.harness_error,
        "status is harness_error: an exception in tau_exp or the benchmark (not scored, rerun on resume)",
        None,
        lambda f: f.result.status == EpisodeStatus.harness_error,
    ),
    Rule(
        Category.context_limit,
        "ended as agent_error or user_error, and its cause (ended_by, error) says a model's context was exceeded",
        None,
        lambda f: _terminated("agent_error", "user_error")(f) and f.ending.context_exceeded,
    ),
    Rule(Category.step_limit, "ended as max_steps (run.max_steps)", None, _terminated("max_steps")),
    Rule(
        Category.too_many_errors,
        "ended as too_many_errors: run.max_errors tool calls failed",
        None,
        _terminated("too_many_errors"),
    ),
    Rule(
        Category.agent_error,
        "ended as agent_error otherwise: the assistant's model sent nothing usable (an empty reply; in tau-bench "
        "v1, a malformed action)",
        None,
        _terminated("agent_error"),
    ),
    Rule(
        Category.user_error,
        "ended as user_error otherwise: the user simulator's model sent nothing usable",
        None,
        _terminated("user_error"),
    ),
    Rule(
        Category.tool_call_schema_error,
        "the first decisive deviation is a write whose arguments are not a JSON object or fail the tool's "
        "schema, or a gold write never made whose rejected attempts had such arguments, or were the other "
        "party's or an unknown tool",
        "tool_call_schema_error",
        lambda f: (
            (
                f.decisive(DeviationKind.wrong_arguments, DeviationKind.extra_write)
                and f.deviation is not None
                and f.deviation.call is not None
                and f.deviation.call.arguments is None
            )
            or (f.decisive(DeviationKind.missing) and f.attempt_problem)
        ),
    ),
    Rule(
        Category.tool_call_argument_error,
        "the first decisive deviation is a write to a pending gold write's tool with other arguments, or a gold "
        "write never made whose attempts the environment rejected",
        "tool_call_argument_error",
        lambda f: (
            f.decisive(DeviationKind.wrong_arguments)
            or (f.decisive(DeviationKind.missing) and f.deviation is not None and f.deviation.attempts > 0)
        ),
    ),
    Rule(
        Category.irrelevant_tool_call,
        "the first decisive deviation is a write no pending gold write asks for (an extra copy of one included)",
        "irrelevant_tool_call",
        lambda f: f.decisive(DeviationKind.extra_write),
    ),
    Rule(
        Category.premature_termination,
        "a gold write was never made (or the gold actions are not known) and the conversation ended early: the "
        "assistant transferred to a human (no gold action does) or stopped itself, the user ended it with "
        "###TRANSFER### or ###OUT-OF-SCOPE###, or it ended while the assistant was still acting",
        "premature_termination",
        lambda f: (
            f.ending.early is not None
            and (f.missing_unattempted or (not f.deviation_known and f.state_wrong is not False))
        ),
    ),
    Rule(
        Category.missed_required_action,
        "a gold write was never made, with no attempt; or a gold action tau2 found unmatched when ACTION is in "
        "the reward basis or the walk could not run",
        "missed_required_action",
        lambda f: f.missing_unattempted or _unmatched_action_counts(f),
    ),
    Rule(
        Category.wrong_sequence,
        "every gold write was made and no other, but not in the gold order, and the final state is wrong",
        "wrong_sequence",
        lambda f: f.deviation_known and f.deviation is None and f.out_of_order and f.state_wrong is True,
    ),
    Rule(
        Category.wrong_final_state,
        "the final state is wrong (a DB mismatch or an environment assertion not met, as the reward basis "
        "counts them) with no deviation found",
        None,
        lambda f: f.state_wrong is True,
    ),
    Rule(
        Category.communication_missed,
        "information the assistant had to say was not said (a communicate check not met)",
        None,
        lambda f: f.checks is not None and any(not c.met for c in f.checks.communicate),
    ),
    Rule(
        Category.partial_credit,
        "every check tau2 reported that counts for the reward passed, yet the reward is below 1",
        None,
        lambda f: (
            f.checks is not None
            and f.checks.evaluated
            and not f.checks.failed
            and f.result.reward is not None
            and f.result.reward < 1.0 - 1e-6
        ),
    ),
    Rule(
        Category.other,
        "none of the above: e.g. an NL assertion not met, a tau2 judge_stop, or a record that says too little",
        "other",
        lambda f: True,
    ),
)


def diagnose(result: EpisodeResult, task: object | None = None, tools: DomainTools | None = None) -> Diagnosis | None:
    """The diagnosis of one record; None for a conversation that passed and ended by a stop.

    `task` is the record's task (a tau2 `Task`, a tau-bench v1 task, or None: then the gold
    actions that tau2's action checks carry are used), `tools` its domain's tools
    (`domain_tools`; None: no deviation is computed, and the schema and other-party checks are
    skipped). Pure: it reads only its arguments."""
    if result.success and result.termination_reason in (*STOPS, None):
        return None
    notes: list[str] = []
    calls = _read_calls(result.messages)
    gold = gold_actions(task)
    try:
        checks, carried = _checks(result, gold, calls, tools)
    except (ValidationError, KeyError, TypeError, ValueError) as error:  # a breakdown of another shape
        checks, carried = None, None
        notes.append(f"the reward breakdown could not be read ({type(error).__name__}): the checks are unknown")
    if checks is None and result.reward_info is None:
        notes.append("the record has no reward breakdown (tau-bench v1, or not scored): the checks are unknown")
    if gold is None and carried is not None:
        gold = carried
        notes.append("no task given: the gold actions are those the reward breakdown carries")
    if gold is None:
        notes.append("no gold actions known: no deviation is computed")
    if tools is None:
        notes.append("the domain's tools are not known: no deviation, schema or other-party check")
    if result.messages and not calls and gold:
        notes.append("the conversation has no tool calls in tau2's form (a text-action agent of tau-bench v1?)")

    walk = _walk(calls, gold, tools) if gold is not None and tools is not None else _Walk()
    ending = Ending(
        status=result.status,
        termination_reason=result.termination_reason,
        ended_by=result.ended_by,
        error_type=result.error.type if result.error else None,
        error_message=result.error.message if result.error else None,
        context_exceeded=_context_exceeded(result),
        early=_ended_early(result, calls, gold),
    )
    tool_errors = _tool_errors(calls, tools)
    deviation = walk.deviation
    attempt_problem = False
    if deviation is not None and deviation.kind == DeviationKind.missing and deviation.attempts:
        attempt_turns = {
            (c.turn, c.name) for c in calls if c.rejected and deviation.gold and c.name == deviation.gold.name
        }
        flagged = {
            (r.turn, r.name) for r in (*tool_errors.malformed, *tool_errors.other_party, *tool_errors.unknown_tool)
        }
        attempt_problem = attempt_turns <= flagged
    facts = _Facts(
        result=result,
        ending=ending,
        checks=checks,
        deviation=deviation,
        deviation_known=gold is not None and tools is not None,
        out_of_order=bool(walk.out_of_order),
        attempt_problem=attempt_problem,
    )
    category = next(rule.category for rule in RULES if rule.applies(facts))
    return Diagnosis(
        task_id=result.task_id,
        trial=result.trial,
        reward=result.reward,
        category=category,
        ending=ending,
        checks=checks,
        deviation=deviation,
        out_of_order=walk.out_of_order,
        read_only_deviations=walk.read_only,
        tool_errors=tool_errors,
        notes=notes,
    )


def category_counts(diagnoses: Iterable[Diagnosis | None]) -> dict[Category, int]:
    """How many diagnoses fall in each category, in the decision list's order, categories with
    none left out (a None, a passed conversation, is not counted): for metrics.json and reports."""
    counts = Counter(diagnosis.category for diagnosis in diagnoses if diagnosis is not None)
    return {rule.category: counts[rule.category] for rule in RULES if counts[rule.category]}
