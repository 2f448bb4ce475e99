"""bench/tau2_scoring.py: the reward with the gold environment answered from its first
recording is exactly tau2's.

The slow test runs every retail, airline and telecom test task against faultless oracle servers
(the first trial: the gold environments are recorded, and the oracle scores 1.0 on every one)
and against oracle servers that inject
model faults (the second: failed trajectories of many kinds, scored from the recording), and
compares every episode's reward and reward breakdown with tau2's unmodified
`evaluate_simulation` on the same trajectory. The fast tests drive the gold environment by hand
with calls that differ from the recording: each gets tau2's own answer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tau_exp.bench import episode_spec, tau2_scoring
from tau_exp.bench.tau2 import load_tasks, run_episode
from tau_exp.config import to_experiment_config
from tau_exp.llm.settings import Retry
from tau_exp.records import EpisodeStatus
from tau_exp.servers import provide

TEST_TASKS = {"retail": 40, "airline": 20, "telecom": 40}


@pytest.fixture(autouse=True)
def _empty_cache():
    tau2_scoring.clear_gold_cache()
    yield
    tau2_scoring.clear_gold_cache()


def _tau2_reward(simulation, task, domain: str):
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

    return evaluate_simulation(
        simulation=simulation, task=task, evaluation_type=EvaluationType.ALL, solo_mode=False, domain=domain
    )


def _reaches_the_environment(simulation, task) -> bool:
    """Whether tau2's evaluation builds environments for this trajectory (a conversation that
    ended by a stop, of a task with gold actions or environment assertions)."""
    criteria = task.evaluation_criteria
    return (
        simulation.termination_reason in ("agent_stop", "user_stop")
        and criteria is not None
        and (criteria.actions is not None or criteria.env_assertions is not None)
    )


@pytest.mark.slow
def test_every_reward_is_tau2s_on_every_test_task_with_and_without_model_faults(
    oracle_servers, oracle_model, compose_cfg, tmp_path, monkeypatch
):
    experiment = to_experiment_config(compose_cfg())
    scored: list = []  # (domain, task, simulation, the reward info the episode got)
    evaluate = tau2_scoring.evaluate

    def capture(simulation, task, domain):
        reward_info = evaluate(simulation, task, domain)
        scored.append((domain, task, simulation, reward_info))
        return reward_info

    monkeypatch.setattr(tau2_scoring, "evaluate", capture)

    def run(servers, trial: int) -> list:
        tasks = [(domain, task) for domain in TEST_TASKS for task in load_tasks(domain, "test")]
        specs = [
            dataclasses.replace(
                # The seed also tells the episodes apart.
                episode_spec(experiment, task, trial, 1000 * trial + index, servers["assistant"], servers["user"]),
                domain=domain,
                retry=Retry(3, 0.01, 30.0),
            )
            for index, (domain, task) in enumerate(tasks)
        ]
        assert [sum(s.domain == d for s in specs) for d in TEST_TASKS] == list(TEST_TASKS.values())
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(run_episode, specs))

    # The faultless oracle first: each task's gold environment is recorded (tau2's own
    # computation) while scoring a successful trajectory; then every faulty trajectory, failed or
    # not, is scored with the recorded gold hashes.
    records = run(oracle_servers, 0)
    # The oracle's own trial scores 1.0 on every test task under tau2's evaluation: the proof that
    # the pipeline and the evaluation agree (telecom-workflow's: tests/test_experiment.py).
    assert [(r.task_id, r.reward) for r in records if r.reward != 1.0] == []
    faults = dict(bad_arguments_rate=0.05, empty_rate=0.02, unhelpful_rate=0.15)
    with (
        provide("assistant", oracle_model(**faults), tmp_path / "servers") as assistant,
        provide("user", oracle_model(unhelpful_rate=0.1, seed=1), tmp_path / "servers") as user,
    ):
        records += run({"assistant": assistant, "user": user}, 1)

    assert [r.status for r in records] == [EpisodeStatus.scored] * len(records), [r.error for r in records if r.error]
    assert len(scored) == len(records) == 2 * sum(TEST_TASKS.values())
    # The oracle's faults seldom end a conversation by a stop with the wrong database (it goes
    # back to its script). So each oracle trajectory also gets a cut one: ended by the user just
    # before the last tool call, as when an agent forgets its last action.
    monkeypatch.undo()
    cut = [
        (domain, task, shortened, tau2_scoring.evaluate(shortened, task, domain))
        for domain, task, simulation, _ in scored[: len(scored) // 2]
        if (shortened := _cut_before_last_tool_call(simulation)) is not None
    ]
    assert len(cut) >= sum(TEST_TASKS.values()) - 2  # two airline tasks have no tool call
    records_by_seed = {r.seed: r for r in records}
    outcomes: dict[str, list] = {domain: [] for domain in TEST_TASKS}
    for episode, (domain, task, simulation, reward_info) in enumerate(scored + cut):
        tau2s = _tau2_reward(simulation, task, domain)
        assert reward_info.model_dump(mode="json") == tau2s.model_dump(mode="json"), (domain, task.id)
        if episode < len(scored):  # what the episode's record says
            record = records_by_seed[simulation.seed]
            assert (record.reward, record.reward_info) == (tau2s.reward, tau2s.model_dump(mode="json"))
        outcomes[domain].append(
            (
                tau2s.reward,
                "environment" if _reaches_the_environment(simulation, task) else simulation.termination_reason,
            )
        )
    print({domain: Counter(seen) for domain, seen in outcomes.items()})

    # The faults made failed trajectories, scored through the environments (a wrong database,
    # missing information, unmet assertions) and ended before them (a garbled tool call).
    for domain, seen in outcomes.items():
        assert (1.0, "environment") in seen and (0.0, "environment") in seen, (domain, Counter(seen))
    assert any(reason != "environment" for seen in outcomes.values() for _, reason in seen)

    # Cut trajectories that miss a write: the wrong database, scored against the recorded gold hash.
    wrong_database = Counter(domain for domain, _, _, info in cut if not info.db_check.db_match)
    print("cut trajectories with the wrong database:", wrong_database)
    assert all(wrong_database[domain] >= TEST_TASKS[domain] // 2 for domain in ("retail", "airline")), wrong_database

    evaluated = [i >= len(scored) // 2 for i, (_, t, s, _) in enumerate(scored + cut) if _reaches_the_environment(s, t)]
    stats = tau2_scoring.gold_cache_stats()
    assert stats.fallbacks == 0
    assert stats.recorded == evaluated.count(False) == sum(TEST_TASKS.values())  # once per task, the first trial
    assert stats.hits == evaluated.count(True)  # every later one


def _cut_before_last_tool_call(simulation):
    """`simulation` ended by the user just before its last tool call, or None without one."""
    from tau2.data_model.simulation import TerminationReason

    calls = [i for i, message in enumerate(simulation.messages) if getattr(message, "tool_calls", None)]
    if not calls:
        return None
    return simulation.model_copy(
        update={"messages": simulation.messages[: calls[-1]], "termination_reason": TerminationReason.USER_STOP}
    )


# The fast tests: one retail task's gold environment, driven the way tau2 drives it and otherwise.


@pytest.fixture
def retail_task():
    return {task.id: task for task in load_tasks("retail", "test")}["5"]


def _gold_constructor(task, domain: str = "retail"):
    from tau2.registry import registry

    stand_in = tau2_scoring._Registry(registry, (domain, task.id, tau2_scoring._task_hash(task)))
    return stand_in, stand_in.get_env_constructor(domain)


def _as_tau2_does(environment, task, actions=None) -> tuple:
    """What tau2's EnvironmentEvaluator does to its gold environment (minus the logging)."""
    environment.set_state(
        initialization_data=task.initial_state.initialization_data if task.initial_state else None,
        initialization_actions=task.initial_state.initialization_actions if task.initial_state else None,
        message_history=(task.initial_state.message_history if task.initial_state else None) or [],
    )
    for action in task.evaluation_criteria.actions if actions is None else actions:
        try:
            environment.make_tool_call(tool_name=action.name, requestor=action.requestor, **action.arguments)
        except Exception:
            pass
    return environment.get_db_hash(), environment.get_user_db_hash()


def _tau2s_gold(task, actions=None) -> tuple:
    from tau2.registry import registry

    return _as_tau2_does(registry.get_env_constructor("retail")(), task, actions)


def _record(task) -> tuple:
    stand_in, construct = _gold_constructor(task)
    hashes = _as_tau2_does(construct(), task)
    stand_in.commit()
    assert tau2_scoring.gold_cache_stats().recorded == 1
    return hashes


def test_the_same_calls_are_answered_from_the_record(retail_task):
    hashes = _record(retail_task)
    assert hashes == _tau2s_gold(retail_task) and hashes[0] is not None
    _, construct = _gold_constructor(retail_task)
    replayer = construct()
    assert isinstance(replayer, tau2_scoring._Replayer)
    assert _as_tau2_does(replayer, retail_task) == hashes
    assert replayer._environment is None  # no environment was built
    assert tau2_scoring.gold_cache_stats() == tau2_scoring.GoldCacheStats(recorded=1, hits=1, fallbacks=0)


def test_other_calls_get_tau2s_own_answer(retail_task):
    _record(retail_task)
    actions = retail_task.evaluation_criteria.actions
    assert len(actions) > 1
    fewer = actions[:-1]  # a call sequence that diverges from the record after some answered calls
    _, construct = _gold_constructor(retail_task)
    assert _as_tau2_does(construct(), retail_task, fewer) == _tau2s_gold(retail_task, fewer)
    # Other arguments from the first call on.
    changed = [a.model_copy(update={"arguments": {**a.arguments}}) for a in actions]
    first_key = next(k for k, v in changed[0].arguments.items() if isinstance(v, str))
    changed[0].arguments[first_key] = changed[0].arguments[first_key] + " "
    assert _as_tau2_does(construct(), retail_task, changed) == _tau2s_gold(retail_task, changed)
    assert tau2_scoring.gold_cache_stats().fallbacks == 2


def test_a_call_past_the_record_or_an_attribute_read_gets_the_real_environment(retail_task):
    hashes = _record(retail_task)
    _, construct = _gold_constructor(retail_task)
    replayer = construct()
    assert _as_tau2_does(replayer, retail_task) == hashes
    assert replayer.get_db_hash() == hashes[0]  # asked again: past the record, computed by tau2
    assert replayer._environment is not None
    reader = construct()
    _as_tau2_does(reader, retail_task)
    assert reader.tools.get_db_hash() == hashes[0]  # the real environment, with the calls so far replayed
    assert tau2_scoring.gold_cache_stats().fallbacks == 2


def test_a_recording_whose_environment_was_read_is_not_kept(retail_task):
    stand_in, construct = _gold_constructor(retail_task)
    recorder = construct()
    _as_tau2_does(recorder, retail_task)
    assert recorder.tools is not None
    stand_in.commit()
    assert tau2_scoring.gold_cache_stats().recorded == 0


def test_the_cache_can_be_turned_off(retail_task, monkeypatch):
    from tau2.data_model.simulation import SimulationRun, TerminationReason

    simulation = SimulationRun(
        id="x",
        task_id=retail_task.id,
        start_time="",
        end_time="",
        duration=0.0,
        termination_reason=TerminationReason.USER_STOP,
        messages=[],
    )
    monkeypatch.setenv("TAU_EXP_GOLD_CACHE", "0")
    off = tau2_scoring.evaluate(simulation, retail_task, "retail")
    assert tau2_scoring.gold_cache_stats().recorded == 0
    monkeypatch.delenv("TAU_EXP_GOLD_CACHE")
    on = tau2_scoring.evaluate(simulation, retail_task, "retail")
    assert tau2_scoring.gold_cache_stats().recorded == 1
    assert on == off == _tau2_reward(simulation, retail_task, "retail")
    assert on.reward == 0.0  # nothing was done: the database differs from the gold one
