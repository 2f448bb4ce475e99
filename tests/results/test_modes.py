"""modes.py: failure modes per configuration with task-level intervals, and which modes account
for the difference between two compared configurations (paired by task, Holm across modes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results.collect import find_configurations
from tau_exp.results.modes import RATE, ConfigurationModes, mode_differences, mode_rates
from tau_exp.results.pairs import paired_differences
from tests.results.test_collect import CONFIG

TASKS = 30


def arm(path: Path, agent: str, step_limited: int, infra: int) -> None:
    """30 tasks: the first `step_limited` end at the step limit (reward 0), the next `infra` are
    lost to infra errors, the rest pass."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(CONFIG.format(extra="").replace("act", agent))
    records = []
    for t in range(TASKS):
        if t < step_limited:
            record = EpisodeResult(
                task_id=str(t), trial=0, seed=0, status=EpisodeStatus.scored, reward=0.0, termination_reason="max_steps"
            )
        elif t < step_limited + infra:
            record = EpisodeResult(task_id=str(t), trial=0, seed=0, status=EpisodeStatus.infra_error)
        else:
            record = EpisodeResult(
                task_id=str(t), trial=0, seed=0, status=EpisodeStatus.scored, reward=1.0, termination_reason="user_stop"
            )
        records.append(record)
    (path / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))


def test_a_mode_that_differs_is_called_and_one_that_does_not_is_not(tmp_path):
    """act hits the step limit on 12 of 30 tasks, react on 1; both lose 2 to infra errors. The
    difference in reward is the step limit's: its rate differs, infra's does not."""
    arm(tmp_path / "act", "act", step_limited=12, infra=2)
    arm(tmp_path / "react", "react", step_limited=1, infra=2)
    configurations = find_configurations([tmp_path])
    modes = [ConfigurationModes(c) for c in configurations]
    rates = {(r.label, r.category): r for r in mode_rates(modes)}
    step = rates["act", "step_limit"]
    assert (step.count, step.pairs, step.rate) == (12, TASKS, pytest.approx(12 / TASKS))
    assert step.low is not None and step.high is not None and step.low < 12 / TASKS < step.high
    by_mode = {d.metric: d for d in mode_differences(modes, paired_differences(configurations))}
    assert set(by_mode) == {RATE + "step_limit", RATE + "infra"}
    limited, lost = by_mode[RATE + "step_limit"], by_mode[RATE + "infra"]
    assert (limited.a, limited.b, limited.difference) == ("act", "react", pytest.approx(-11 / TASKS))
    assert limited.verdict == "more often in act" and limited.family == "modes of act vs react"
    assert lost.difference == 0 and lost.verdict == "no detectable difference"


def test_compare_prints_the_modes_behind_a_difference(tmp_path, capsys):
    from tau_exp.results.compare import main

    arm(tmp_path / "act", "act", step_limited=12, infra=2)
    arm(tmp_path / "react", "react", step_limited=1, infra=2)
    main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert "failure modes behind each difference" in printed and "more often in act" in printed
