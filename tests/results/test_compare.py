"""compare.py: `python -m tau_exp.compare` on job directories — intervals per configuration,
paired verdicts with flip lists, planning, and the bad inputs (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tau_exp.jobdir import JobDir
from tau_exp.results.compare import main
from tests.results.test_collect import CONFIG, DATA, NEWER_DATA, job


def two_arms(tmp_path: Path, b_rewards: dict[str, list[float]]) -> list[str]:
    a = {str(t): [1.0, 1.0] if t < 20 else [0.0, 0.0] for t in range(40)}
    job(tmp_path / "a", CONFIG.format(extra=""), a)
    job(tmp_path / "b", CONFIG.format(extra="").replace("act", "react"), b_rewards)
    return [str(tmp_path / "a"), str(tmp_path / "b")]


def test_a_clear_difference_is_called_with_the_tasks_that_flip(tmp_path, capsys):
    b = {str(t): [1.0, 1.0] if t < 20 or t >= 32 else [0.0, 0.0] for t in range(40)}  # 8 more tasks solved
    b["0"] = [0.0, 0.0]  # and one lost
    main([*two_arms(tmp_path, b), "--json"])
    out = json.loads(capsys.readouterr().out)
    [reward] = [d for d in out["differences"] if d["metric"] == "avg_reward"]
    assert reward["verdict"] == "react better"  # the arms are labelled by what sets them apart
    assert reward["difference"] == pytest.approx(7 / 40) and reward["low"] > 0
    assert reward["a_more"] == ["0"] and sorted(reward["b_more"], key=int) == [str(t) for t in range(32, 40)]


def test_the_same_results_twice_make_no_detectable_difference_and_say_what_would_be(tmp_path, capsys):
    same = {str(t): [1.0, 0.0] if t % 3 == 0 else ([1.0, 1.0] if t < 20 else [0.0, 0.0]) for t in range(40)}
    paths = two_arms(tmp_path, same)
    main([*paths, "--json", "--plan", "5"])
    out = json.loads(capsys.readouterr().out)
    reward = next(d for d in out["differences"] if d["metric"] == "avg_reward")
    assert reward["verdict"] == "no detectable difference" and reward["mde"] > 0
    arm_b = next(arm for arm in out["arms"] if "react" in arm["label"])
    assert arm_b["noise_floor"] > 0 and arm_b["trials_needed"] > 2
    assert [m["metric"] for m in arm_b["metrics"]] == ["avg_reward", "pass^1", "pass^2"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--baseline", "nothing"], "--baseline 'nothing' matches none of the configurations"),
        (["--plan", "0"], "--plan 0 must be a difference in points between 0 and 100"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    paths = two_arms(tmp_path, {"x": [1.0]})
    with pytest.raises(SystemExit) as exited:
        main([*paths, *extra])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_configurations_that_share_no_task_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(two_arms(tmp_path, {"x": [1.0]}))
    assert exited.value.code == 2 and "share no task" in capsys.readouterr().err


def test_a_comparison_across_task_data_is_marked(tmp_path, capsys):
    """The same configuration on two task data: compare pairs them (same task ids) but marks the
    pair, in the table and in --json (same_data false)."""
    rewards = {str(t): [1.0, 1.0] if t < 20 else [0.0, 0.0] for t in range(40)}
    job(tmp_path / "old", CONFIG.format(extra=""), rewards, task_data=DATA)
    job(tmp_path / "new", CONFIG.format(extra=""), rewards, task_data=NEWER_DATA)
    main([str(tmp_path / "old"), str(tmp_path / "new"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert {d["same_data"] for d in out["differences"]} == {False}
    main([str(tmp_path / "old"), str(tmp_path / "new")])
    printed = capsys.readouterr().out
    assert "task data" in printed and printed.count("DIFFERENT") == 3  # avg_reward, pass^1, pass^2


@pytest.mark.slow
def test_on_real_oracle_sweeps_a_designed_difference_is_called_and_a_seed_is_not(tmp_path, launch, attached, capsys):
    """Retail, 2 trials: an assistant that garbles 30% of its tool arguments against one that does
    not is called worse, with the flip lists read back from the results; two seeds are not. (The
    fault rate is the configuration's: each job of that sweep starts its own oracle.)"""
    common = ["tasks.end=20", "run.num_trials=2", "tracking=none"]
    faults = launch(
        ["-m", "hydra.sweep.dir=faults", *common, "model.server.oracle.faults.bad_arguments_rate=0,0.3"], cwd=tmp_path
    )
    seeds = launch(["-m", "hydra.sweep.dir=seeds", *common, "run.seed=1,2", *attached], cwd=tmp_path)
    assert faults.returncode == 0 and seeds.returncode == 0, faults.stderr[-2000:] + seeds.stderr[-2000:]

    main([str(tmp_path / "faults"), "--json"])
    [reward] = [d for d in json.loads(capsys.readouterr().out)["differences"] if d["metric"] == "avg_reward"]
    assert "bad_arguments_rate=0.0" in reward["a"] and "bad_arguments_rate=0.3" in reward["b"]
    assert reward["verdict"] == f"{reward['a']} better" and reward["high"] < 0
    # The flip lists, from each arm's results.jsonl: tasks solved more often by one arm.
    rates = {}
    for job_dir in sorted((tmp_path / "faults").glob("*_oracle*")):
        records = JobDir(job_dir).read_results()
        rates[job_dir.name] = {
            t: sum(r.success for r in records if r.task_id == t) for t in {r.task_id for r in records}
        }
    clean, garbled = rates.values()
    assert reward["a_more"] == sorted(t for t in clean if clean[t] > garbled[t])
    assert reward["b_more"] == sorted(t for t in clean if garbled[t] > clean[t])

    main([str(tmp_path / "seeds"), "--json"])
    verdicts = {d["metric"]: d["verdict"] for d in json.loads(capsys.readouterr().out)["differences"]}
    assert verdicts == dict.fromkeys(["avg_reward", "pass^1", "pass^2"], "no detectable difference")


def faulty_arms(tmp_path: Path) -> list[Path]:
    """Two jobs of one configuration but for the oracle's unhelpful_rate (0 and 0.3), on 40 tasks
    whose ids carry square brackets, as telecom's do."""
    paths = []
    for name, rate, lost in (("clean", 0.0, 0), ("faulty", 0.3, 6)):
        server = f"model: {{name: org/m, server: {{kind: oracle, oracle: {{faults: {{unhelpful_rate: {rate}}}}}}}}}\n"
        config = CONFIG.format(extra="").replace("model: {name: org/m}\n", server)
        rewards = {f"[mobile_data_issue]t{t}[PERSONA:Hard]": [0.0 if t < lost else 1.0] for t in range(40)}
        job(tmp_path / name, config, rewards)
        paths.append(tmp_path / name)
    return paths


@pytest.mark.parametrize("width", [80, 120])
def test_arms_that_differ_only_in_a_setting_print_apart_and_whole_at_80_and_120_columns(tmp_path, width):
    """Before, both arms printed as `retail · tool_calling · oracle · model.server.oracle.faults.bad_…`
    and the verdict as `no detecta…`: every cell now wraps rather than being cut."""
    from rich.console import Console

    from tau_exp.results.compare import render, run_comparison

    out = Console(width=width, record=True, markup=False)
    for part in render(run_comparison(faulty_arms(tmp_path))):
        assert out.measure(part).minimum <= width  # or the console would crop the table's right side
        out.print(part)
    text = out.export_text()
    assert "…" not in text
    lines = text.splitlines()
    for label in ("A: unhelpful_rate=0.0", "B: unhelpful_rate=0.3", "A better", "-0.266–-0.034"):
        assert any(label in line for line in lines), f"{label} is cut or folded at {width} columns"


def test_task_ids_print_verbatim_brackets_and_all(tmp_path, capsys):
    """Telecom's ids are `[mobile_data_issue]…[PERSONA:Hard]`: once eaten as console markup."""
    main([str(path) for path in faulty_arms(tmp_path)])
    assert "[mobile_data_issue]t0[PERSONA:Hard]" in capsys.readouterr().out


def test_a_torn_line_is_left_out_and_said(tmp_path, caplog):
    """compare and report once passed over a torn last line of results.jsonl without a word."""
    paths = two_arms(tmp_path, {str(t): [1.0, 1.0] for t in range(40)})
    with open(Path(paths[1]) / "results.jsonl", "ab") as results:
        results.write(b'{"task_id": "40", "tri')
    main(paths)
    assert f"{Path(paths[1]) / 'results.jsonl'}: its last line is torn (22 bytes" in caplog.text
