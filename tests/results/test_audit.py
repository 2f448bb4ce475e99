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
