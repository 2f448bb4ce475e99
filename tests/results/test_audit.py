"""audit.py: each failure labelled agent, user simulator or undetermined from what the oracle
assistant did on its task under the same user configuration; audits on other data refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.errors import TauExpError
from tau_exp.results.audit import Side, run_audit
from tests.results.test_collect import CONFIG, DATA, NEWER_DATA, job

AGENT = CONFIG.format(extra="")  # agent act, model org/m, user u (llm), retail
ORACLE = AGENT.replace("org/m", "oracle").replace("act", "tool_calling")


def runs(tmp_path: Path, audit_data=DATA) -> tuple[Path, Path]:
    """The audit: the oracle assistant solves tasks 0–7 in both trials, fails 8 in both (the user
    simulator spoils it), and 9 in one of two. The agent fails 2, 8, 9 and 10 (10: not audited)."""
    audit = {str(t): [1.0, 1.0] for t in range(8)} | {"8": [0.0, 0.0], "9": [1.0, 0.0]}
    job(tmp_path / "audit", ORACLE, audit, task_data=audit_data)
    agent = {str(t): [0.0 if t in (2, 8, 9, 10) else 1.0] for t in range(11)}
    job(tmp_path / "agent", AGENT, agent, task_data=DATA)
    return tmp_path / "agent", tmp_path / "audit"


def test_failures_are_the_agents_the_simulators_or_undetermined_by_the_audit(tmp_path):
    agent, audit = runs(tmp_path)
    [judged] = run_audit([agent], [audit]).configurations
    assert judged.labels == {
        "2/0": Side.agent.value,  # sound under this user: the agent's
        "8/0": Side.user_simulator.value,  # even the oracle failed: the simulator's
        "9/0": Side.undetermined.value,  # the oracle failed it once in two: flaky
        "10/0": Side.undetermined.value,  # not audited
    }
    shares = {share.side: share for share in judged.sides}
    assert (shares[Side.agent].count, shares[Side.user_simulator].count, shares[Side.undetermined].count) == (1, 1, 2)
    assert shares[Side.undetermined].rate == pytest.approx(2 / 11)
    assert judged.user_limited_tasks == ["8"] and judged.not_audited_tasks == ["10"]
    # pass^1 on the tasks the audit found sound (0–7): the agent failed 1 of 8.
    assert judged.pass_hat_k[1] == pytest.approx(7 / 11) and judged.pass_hat_k_user_sound[1] == pytest.approx(7 / 8)


def test_an_audit_on_other_task_data_or_without_the_oracle_is_refused(tmp_path):
    agent, audit = runs(tmp_path, audit_data=NEWER_DATA)
    with pytest.raises(TauExpError, match="the audit of .* user ran other task data"):
        run_audit([agent], [audit])
    with pytest.raises(TauExpError, match="is no audit: its assistant is org/m, not the oracle"):
        run_audit([audit], [agent])


def test_the_command_prints_the_sides_and_the_missing_audit(tmp_path, capsys):
    from tau_exp.results.audit import main

    agent, audit = runs(tmp_path)
    main([str(agent), "--audit", str(audit)])
    printed = capsys.readouterr().out
    assert "whose fault each failure is" in printed and "user-limited tasks 8" in printed
    assert "model=oracle agent=tool_calling" in printed and "tasks.ids=[10]" in printed


@pytest.mark.slow
def test_the_audit_end_to_end_attributes_injected_user_faults_to_the_simulator(
    tmp_path, launch, attach_to, oracle_servers, oracle_faults
):
    """Known truth from the oracle's injected faults. The agent under test makes every tool call
    malformed (its own fault) and talks to a user simulator that skips every action on its
    device (the simulator's fault). The audit runs the clean oracle assistant against that same
    user: telecom tasks with gold device actions come out user-limited, the others sound. Each
    failure is then the simulator's exactly when its task has a device action, else the agent's."""
    from tau_exp import bench
    from tau_exp.config import Benchmark

    faulty = oracle_faults(assistant={"bad_arguments_rate": 1.0}, user={"user_skip_device_rate": 1.0})
    sweep = ["-m", "env=retail,telecom", "tasks.end=2", "tracking=none", "run.max_errors=3"]
    agent = launch([*sweep, f"hydra.sweep.dir={tmp_path / 'agent'}", *attach_to(faulty)], cwd=tmp_path)
    assert agent.returncode == 0, agent.stderr[-2000:]
    audit_servers = {"assistant": oracle_servers["assistant"], "user": faulty["user"]}
    audit = launch([*sweep, f"hydra.sweep.dir={tmp_path / 'audit'}", *attach_to(audit_servers)], cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr[-2000:]

    device = {
        (env, task.id): any(action.requestor == "user" for action in task.evaluation_criteria.actions or [])
        for env in ("retail", "telecom")
        for task in bench.load_tasks(Benchmark.tau2, env, "test")[:2]
    }
    assert any(device.values()) and not all(device.values())  # both kinds of task are in the test
    judged = run_audit([tmp_path / "agent"], [tmp_path / "audit"])
    labels = {c.label: c.labels for c in judged.configurations}
    assert set(labels) == {"retail", "telecom"} and not judged.missing
    for env, pairs in labels.items():
        assert len(pairs) == 2  # every pair failed (malformed calls)
        for pair, side in pairs.items():
            task = pair.split("/")[0]
            expected = Side.user_simulator if device[env, task] else Side.agent
            assert side == expected.value, (env, task)


def test_the_report_writes_each_configurations_failures_by_side(tmp_path):
    import csv

    from tau_exp.results.report import main as report_cli

    agent, audit = runs(tmp_path)
    report_cli([str(agent), "--audit", str(audit), "-o", str(tmp_path / "out")])
    with open(tmp_path / "out" / "failure_sides.csv") as sides:
        rows = {row["side"]: row for row in csv.DictReader(sides)}
    assert {side: row["count"] for side, row in rows.items()} == {
        "agent": "1",
        "user simulator": "1",
        "undetermined": "2",
    }
    assert float(rows["agent"]["pass^1_user_sound"]) == pytest.approx(7 / 8)
