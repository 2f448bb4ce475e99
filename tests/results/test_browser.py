"""The sweep browser (`report --html`), opened from disk in headless Chromium and clicked through:
sweep → configuration → task → side by side, with what each view shows checked against the
job's own results.jsonl.

The sweep is real: two agents against an oracle assistant that makes mistakes (malformed tool
arguments, unhelpful replies, server errors without retries), so the page has successes,
failures scored 0 by tau2, infra errors, and tasks where the two agents disagree.

Screenshots go to $TAU_EXP_SCREENSHOTS when set (the README's come from
`TAU_EXP_SCREENSHOTS=docs/browser .venv/bin/python -m pytest tests/browser`), else to a temp dir.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.browser_page import TASKS_PER_JOB, synthetic_sweep
from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results.browser import BROWSER_FILE, write_browser
from tau_exp.results.collect import find_configurations
from tau_exp.results.pairs import data_note, paired_differences
from tau_exp.results.report import main as report_cli
from tests.support.oracle_chat import OracleFaults

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Sweep:
    """The sweep on disk, its page, and what the page should show, read from results.jsonl."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.page = directory / "browser.html"
        groups = find_configurations([directory])
        self.configs = [configuration.row for configuration in groups]
        self.records: dict[int, list[EpisodeResult]] = {
            config_id: [r for source in sources for r in source.results]
            for config_id, (_, sources, _) in enumerate(groups)
        }

    def config_id(self, agent: str) -> int:
        return next(i for i, row in enumerate(self.configs) if row.agent == agent)

    def outcome(self, record: EpisodeResult) -> str:
        if record.status != EpisodeStatus.scored:
            return record.status.value
        return "success" if record.success else "failure"

    def disagreements(self, config_ids: list[int]) -> set[str]:
        rates: dict[str, set[float]] = defaultdict(set)
        for config_id in config_ids:
            by_task: dict[str, list[bool]] = defaultdict(list)
            for r in self.records[config_id]:
                if r.status == EpisodeStatus.scored:
                    by_task[r.task_id].append(r.success)
            for task, successes in by_task.items():
                rates[task].add(sum(successes) / len(successes))
        return {task for task, values in rates.items() if len(values) > 1}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, launch, faulty_servers, attach_to) -> Iterator[Sweep]:
    directory = tmp_path_factory.mktemp("browser") / "sweep"
    faults = OracleFaults(faulty_servers)
    faulty = faults(assistant={"bad_arguments_rate": 0.15, "unhelpful_rate": 0.15, "error_rate": 0.02})
    # Retail test tasks 5–10: the last four have information the agent must tell the user.
    try:
        done = launch(
            [
                "-m",
                f"hydra.sweep.dir={directory}",
                "agent=tool_calling,act",
                "tasks.start=5",
                "tasks.end=11",
                "run.num_trials=2",
                *attach_to(faulty),
                "run.retry.attempts=1",
                "run.max_concurrency=1",
                "run.workers=0",
                "tracking=none",
            ],
            cwd=directory.parent,
        )
    finally:
        faults.clear()
    assert list(directory.glob("*/results.jsonl")), done.stderr[-3000:]  # incomplete jobs (infra errors) exit 1
    report_cli([str(directory), "--html"])
    sweep = Sweep(directory)
    outcomes = {sweep.outcome(r) for records in sweep.records.values() for r in records}
    # The fault seed is fixed and the episodes run one at a time: the same mistakes every run.
    assert {"success", "failure", "infra_error"} <= outcomes, outcomes
    assert sweep.disagreements(list(sweep.records)), "the two agents should disagree on some task"
    assert any(
        r.reward_info and not all(c["met"] for c in r.reward_info["communicate_checks"] or [])
        for records in sweep.records.values()
        for r in records
    ), "some information should go unsaid"
    yield sweep


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("TAU_EXP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(tab, directory: Path, name: str) -> None:
    path = directory / f"{name}.png"
    tab.screenshot(path=str(path))
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 20_000, f"{path} is not a real screenshot"


def rows(tab, table: str) -> list[str]:
    return tab.locator(f"#{table} tbody tr").all_inner_texts()


def test_click_through_sweep_configuration_task_and_side_by_side(sweep, page, screenshots):
    """The path a researcher takes: the sweep table, one configuration's tasks, a failed task
    (its conversation and why tau2 scored it 0), then the same task beside the other agent."""
    page.goto(sweep.page.as_uri())
    page.wait_for_selector("#sweep-table tbody tr")
    assert page.evaluate("blocks.size") == 0  # nothing decompressed for the table
    table = rows(page, "sweep-table")
    assert len(table) == len(sweep.configs)
    for line, row in zip(table, sweep.configs, strict=True):
        assert row.label in line and f"{row.avg_reward:.3f}" in line
    max_k = max(k for row in sweep.configs for k in row.pass_hat_k)
    headers = page.locator("#sweep-table thead th").all_inner_texts()
    assert [h for h in headers if h.startswith("pass^")] == [f"pass^{k}" for k in range(1, max_k + 1)]
    screenshot(page, screenshots, "sweep")

    tool_calling = sweep.config_id("tool_calling")
    page.click(f'#sweep-table tr[data-config="{tool_calling}"] a')
    page.wait_for_selector("#task-table tbody tr")
    records = sweep.records[tool_calling]
    assert len(rows(page, "task-table")) == len(records)
    assert page.evaluate("blocks.size") == 0  # the list comes from the index alone
    screenshot(page, screenshots, "configuration")

    failed = next(
        r for r in records if sweep.outcome(r) == "failure" and r.reward_info["db_check"]["db_match"] is False
    )
    page.click(f'#task-table tr[data-task="{failed.task_id}"][data-trial="{failed.trial}"] a')
    page.wait_for_selector("#reward-breakdown")
    header = page.inner_text(".episode-header")
    assert "failure" in header and f"termination: {failed.termination_reason}" in header
    assert "final database differs from the gold one" in page.inner_text(".db-check")
    checks = failed.reward_info["action_checks"]
    missed = page.locator("#action-checks li.missed").all_inner_texts()
    assert len(page.locator("#action-checks li").all()) == len(checks)
    assert [text.split("(")[0].lstrip("✗ ").strip() for text in missed] == [
        c["action"]["name"] for c in checks if not c["action_match"]
    ]
    assert all(text.endswith("not taken") for text in missed)
    # The conversation: every message, each tool call by name with its arguments, each tool error marked.
    assert page.locator(".conversation > li").count() == len(failed.messages)
    calls = [call["name"] for m in failed.messages for call in (m.get("tool_calls") or [])]
    assert page.locator(".tool-call .tool-name").all_inner_texts() == [f"→ {name}" for name in calls]
    assert page.locator(".message.tool-error").count() == sum(bool(m.get("error")) for m in failed.messages)
    usage = page.locator("#usage tbody tr").all_inner_texts()
    assert [line.split("\t")[:2] for line in usage] == [[role, str(u.calls)] for role, u in failed.usage.items()]
    assert page.evaluate("blocks.size") == 1
    screenshot(page, screenshots, "task")

    page.click("#side-by-side")
    page.wait_for_selector(".side-by-side .side")
    sides = page.locator(".side")
    assert sides.count() == len(sweep.configs)
    for index in range(sides.count()):
        side = sides.nth(index)
        config_id = int(side.get_attribute("data-config"))
        record = next(r for r in sweep.records[config_id] if r.key == failed.key)
        assert side.locator(".conversation > li").count() == len(record.messages)
        assert sweep.outcome(record) in side.locator(".episode-header").inner_text()
    screenshot(page, screenshots, "side_by_side")


def test_tasks_filter_by_outcome_termination_and_search(sweep, page):
    """A configuration's list narrows to the outcome, the termination reason and the search
    (a task id; or words of the task's instructions and conversation, once the job's records
    are opened)."""
    config_id = sweep.config_id("tool_calling")
    records = sweep.records[config_id]
    page.goto(f"{sweep.page.as_uri()}#/config/{config_id}")
    page.wait_for_selector("#task-table tbody tr")

    def shown() -> set[tuple[str, int]]:
        page.wait_for_function("!document.getElementById('list-status').textContent.startsWith('Searching')")
        return {
            (tr.get_attribute("data-task"), int(tr.get_attribute("data-trial")))
            for tr in page.locator("#task-table tbody tr").all()
        }

    for outcome in ("failure", "infra_error", "success"):
        expected = {r.key for r in records if sweep.outcome(r) == outcome}
        assert expected, f"the sweep should have a {outcome} in this configuration"
        page.select_option("select[name=outcome]", outcome)
        assert shown() == expected, outcome
    page.select_option("select[name=outcome]", "")
    terminations = sorted({r.termination_reason for r in records if r.termination_reason})
    assert page.locator("select[name=term] option").all_inner_texts() == ["all", *terminations]
    page.select_option("select[name=term]", terminations[0])
    assert shown() == {r.key for r in records if r.termination_reason == terminations[0]}
    page.select_option("select[name=term]", "")

    task = records[0].task_id
    page.fill("input[name=q]", task)  # a task id: that task, not every mention of the number
    assert shown() == {r.key for r in records if r.task_id == task}
    # A user id from a tool call: only the conversations that mention it.
    needle = next(
        call["arguments"]["user_id"]
        for r in records
        for m in r.messages
        for call in (m.get("tool_calls") or [])
        if "user_id" in call["arguments"]
    )
    page.fill("input[name=q]", needle)
    assert shown() == {r.key for r in records if needle in json.dumps(r.messages)}
    assert "q=" in page.url  # the filters live in the URL: Back and shared links keep them


def test_information_to_communicate_said_or_missing(sweep, page):
    """A task whose user had to be told something: each piece of information, marked as said
    or missing, as tau2's communicate check found."""
    config_id, record = next(
        (c, r)
        for c, records in sweep.records.items()
        for r in records
        if r.reward_info and any(not check["met"] for check in r.reward_info["communicate_checks"] or [])
    )
    page.goto(f"{sweep.page.as_uri()}#/config/{config_id}/task/{record.task_id}/{record.trial}")
    page.wait_for_selector("#communicate-checks")
    checks = record.reward_info["communicate_checks"]
    assert page.locator("#communicate-checks li.missed").all_inner_texts() == [
        f"✗ {check['info']} — missing" for check in checks if not check["met"]
    ]
    assert page.locator("#communicate-checks li.met").all_inner_texts() == [
        f"✓ {check['info']}" for check in checks if check["met"]
    ]


def test_an_infra_error_shows_why_it_was_not_scored(sweep, page):
    config_id, record = next(
        (c, r) for c, records in sweep.records.items() for r in records if r.status == EpisodeStatus.infra_error
    )
    page.goto(f"{sweep.page.as_uri()}#/config/{config_id}/task/{record.task_id}/{record.trial}")
    page.wait_for_selector(".error-box")
    assert "infra error" in page.inner_text(".episode-header")
    assert record.error.message[:60] in page.inner_text(".error-box")
    assert "Not scored." in page.inner_text("#reward-breakdown")


def test_compare_selected_configurations_and_only_disagreements(sweep, page, screenshots):
    """Tick configurations in the sweep table, compare them task by task, keep the tasks where
    they disagree, open one side by side."""
    page.goto(sweep.page.as_uri())
    page.wait_for_selector("#sweep-table tbody tr")
    assert "disabled" in page.get_attribute("#compare-selected", "class")
    for checkbox in page.locator("#sweep-table tbody input[type=checkbox]").all():
        checkbox.check()
    page.click("#compare-selected")
    page.wait_for_selector("#compare-table tbody tr")
    # The verdict on average reward, as inference.py computes it, with the flip lists as links.
    [difference] = [d for d in paired_differences(find_configurations([sweep.directory])) if d.metric == "avg_reward"]
    verdict = page.inner_text("#verdicts")
    assert ("No detectable difference" in verdict) == (difference.verdict == "no detectable difference")
    assert f"{difference.difference:+.3f}" in verdict and f"{difference.tasks} tasks" in verdict
    assert page.locator("#verdicts a").count() == len(difference.a_more) + len(difference.b_more)
    assert f"task data: {data_note(difference.same_data)}" in verdict  # like for like, or not, as the report says
    all_tasks = {r.task_id for records in sweep.records.values() for r in records}
    assert {tr.get_attribute("data-task") for tr in page.locator("#compare-table tbody tr").all()} == all_tasks
    page.check("#only-differ")
    expected = sweep.disagreements(list(sweep.records))
    assert expected < all_tasks  # the filter has something to leave out
    assert {tr.get_attribute("data-task") for tr in page.locator("#compare-table tbody tr").all()} == expected
    screenshot(page, screenshots, "compare")
    page.click("#compare-table tbody tr:first-child td:first-child a")
    page.wait_for_selector(".side-by-side .side .conversation")
    assert page.locator(".side").count() == len(sweep.configs)


def test_sorting_the_sweep_table(sweep, page):
    assert len({row.avg_reward for row in sweep.configs}) > 1  # an order to get wrong
    page.goto(sweep.page.as_uri())
    page.wait_for_selector("#sweep-table tbody tr")
    for direction, reverse in (("ascending", False), ("descending", True)):
        page.click('#sweep-table th[data-key="avg_reward"]')
        page.wait_for_selector(f'#sweep-table th[data-key="avg_reward"][aria-sort="{direction}"]')
        shown = [int(tr.get_attribute("data-config")) for tr in page.locator("#sweep-table tbody tr").all()]
        rewards = [sweep.configs[i].avg_reward for i in shown]
        assert rewards == sorted(rewards, reverse=reverse)


def test_a_large_sweep_opens_lazily(sweep, page, tmp_path):
    """120 jobs × 100 tasks (copies of the real records under new task ids): the page lists
    every configuration and opens a task while decompressing only that task's job.

    The page is written as `report --html` writes it, without the report's paired comparisons:
    they are not what this test is about (the compare view's verdicts are tested on the real
    sweep above; the whole report of this sweep is timed by the benchmark's browser section)."""
    scored = [r for records in sweep.records.values() for r in records if r.status == EpisodeStatus.scored]
    big = synthetic_sweep(scored, 120, tmp_path / "big")
    write_browser(find_configurations([big]), [big], big / BROWSER_FILE)
    page.goto((big / "browser.html").as_uri())
    page.wait_for_selector("#sweep-table tbody tr")
    assert page.locator("#sweep-table tbody tr").count() == 120
    page.click("#sweep-table tbody tr:nth-child(60) td:nth-child(2) a")
    page.wait_for_selector("#task-table tbody tr")
    assert page.locator("#task-table tbody tr").count() == TASKS_PER_JOB
    page.click("#task-table tbody tr:nth-child(50) a")
    page.wait_for_selector(".conversation > li")
    assert page.evaluate("blocks.size") == 1
    # Side by side across the env's 120 configurations: six columns, and it says so.
    page.click("#side-by-side")
    page.wait_for_selector(".side-by-side .side .conversation")
    assert page.locator(".side").count() == 6
    assert "Showing 6 of 120 configurations of retail" in page.inner_text("#view")
    assert page.evaluate("blocks.size") <= 24  # decompressed jobs are let go beyond 24


def test_compare_keeps_the_tasks_of_different_envs_apart(sweep, page, tmp_path):
    """Task 5 of retail and task 5 of airline are different tasks: compared configurations of
    two envs give a row per (env, task), never a disagreement between envs."""
    scored = [r for records in sweep.records.values() for r in records if r.status == EpisodeStatus.scored]
    mixed = synthetic_sweep(scored, 2, tmp_path / "mixed")
    config = next(mixed.glob("1_*")) / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("env: {name: retail}", "env: {name: airline}"))
    report_cli([str(mixed), "--html"])
    page.goto(f"{(mixed / 'browser.html').as_uri()}#/compare/0,1")
    page.wait_for_selector("#compare-table tbody tr")
    envs = [tr.get_attribute("data-env") for tr in page.locator("#compare-table tbody tr").all()]
    assert sorted(envs) == ["airline"] * TASKS_PER_JOB + ["retail"] * TASKS_PER_JOB
    assert page.locator("#compare-table td:has-text('other env')").count() == 2 * TASKS_PER_JOB
    assert page.locator("#compare-table tr.differ").count() == 0


def test_a_telecom_task_shows_the_users_own_tool_calls_and_the_device_checks(tmp_path, launch, attached, page):
    """In dual-control telecom the user acts on their phone: the user's tool results are shown on
    the user's side and named as theirs, and the reward's environment assertions say whose state
    they check."""
    job_dir = tmp_path / "telecom"
    overrides = ["env=telecom", "tasks.start=10", "tasks.end=11", "tracking=none", *attached]
    done = launch([*overrides, f"hydra.run.dir={job_dir}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report_cli([str(job_dir), "--html"])
    [record] = [
        EpisodeResult.model_validate_json(line) for line in (job_dir / "results.jsonl").read_text().splitlines()
    ]
    page.goto(f"{(job_dir / 'browser.html').as_uri()}#/config/0/task/{record.task_id}/{record.trial}")
    page.wait_for_selector("#env-assertions")
    user_results = [m for m in record.messages if m["role"] == "tool" and m["requestor"] == "user"]
    shown = page.locator(".message.tool.by-user")
    assert user_results and shown.count() == len(user_results)
    assert all(title.startswith("USER'S TOOL RESULT") for title in shown.locator(".role").all_inner_texts())
    assert shown.first.evaluate("e => getComputedStyle(e).alignSelf") == "flex-start"  # the user's side
    assertions = record.reward_info["env_assertions"]
    texts = page.locator("#env-assertions li").all_inner_texts()
    assert len(texts) == len(assertions)
    for text, check in zip(texts, assertions, strict=True):
        side = "on the user's device" if check["env_assertion"]["env_type"] == "user" else "in the assistant's systems"
        assert check["env_assertion"]["func_name"] in text and text.endswith(side)
    by_user = [c for c in record.reward_info["action_checks"] if c["action"]["requestor"] == "user"]
    assert page.locator("#action-checks li", has_text="by the user").count() == len(by_user) > 0


def test_an_imported_tau2_results_file_beside_a_tau_exp_job(tau2_results_file, oracle_job, page, tmp_path):
    """A file tau2's own run_tasks wrote, in the browser beside a tau_exp job of the same tasks:
    a row each, its conversations with tau2's tool calls and reward breakdown, and the two
    compared task by task, side by side."""
    from tau_exp.bench.tau2_results import read_tau2_results

    report_cli([str(oracle_job), str(tau2_results_file), "-o", str(tmp_path), "--html"])
    groups = find_configurations([oracle_job, tau2_results_file])
    imported = next(i for i, (row, *_) in enumerate(groups) if row.agent == "llm_agent")
    page.goto((tmp_path / "browser.html").as_uri())
    page.wait_for_selector("#sweep-table tbody tr")
    table = rows(page, "sweep-table")
    assert len(table) == 2 and all(any(row.label in line for line in table) for row, *_ in groups)

    _, records, _, _ = read_tau2_results(tau2_results_file)
    record = next(r for r in records if any(m.get("tool_calls") for m in r.messages))
    page.goto(f"{(tmp_path / 'browser.html').as_uri()}#/config/{imported}/task/{record.task_id}/{record.trial}")
    page.wait_for_selector("#reward-breakdown")
    assert "success" in page.inner_text(".episode-header")
    assert page.locator(".conversation > li").count() == len(record.messages)
    calls = [call["name"] for m in record.messages for call in (m.get("tool_calls") or [])]
    assert page.locator(".tool-call .tool-name").all_inner_texts() == [f"→ {name}" for name in calls]
    page.click("#side-by-side")
    page.wait_for_selector(".side-by-side .side .conversation")
    assert page.locator(".side").count() == 2

    page.goto(f"{(tmp_path / 'browser.html').as_uri()}#/compare/0,1")
    page.wait_for_selector("#compare-table tbody tr")
    tasks = {r.task_id for r in records}
    assert {tr.get_attribute("data-task") for tr in page.locator("#compare-table tbody tr").all()} == tasks
    assert "No detectable difference" in page.inner_text("#verdicts")


def test_failures_filter_by_category_and_show_their_diagnosis_at_the_decisive_turn(sweep, page):
    """Each failed pair's diagnosis (diagnosis.py, computed on read as the page was written): the
    list filters by its category, the task view shows why it failed with the first decisive
    deviation highlighted at its message and the gold action beside it."""
    from tau_exp.results.diagnosis import diagnose, domain_tools

    config_id = sweep.config_id("tool_calling")
    diagnoses = {r.key: d for r in sweep.records[config_id] if (d := diagnose(r, None, domain_tools("retail")))}
    assert diagnoses, "the faulty sweep should have failures"
    page.goto(f"{sweep.page.as_uri()}#/config/{config_id}")
    page.wait_for_selector("#task-table tbody tr")
    categories = sorted({d.category.value for d in diagnoses.values()})
    assert page.locator("select[name=failure] option").all_inner_texts() == [
        "all",
        *(c.replace("_", " ") for c in categories),
    ]
    for category in categories:
        page.select_option("select[name=failure]", category)
        page.wait_for_function("!document.getElementById('list-status').textContent.startsWith('Searching')")
        shown = {
            (tr.get_attribute("data-task"), int(tr.get_attribute("data-trial")))
            for tr in page.locator("#task-table tbody tr").all()
        }
        assert shown == {key for key, d in diagnoses.items() if d.category.value == category}, category

    # A failure whose first decisive deviation has a message (the call; for a gold write never
    # made, its last rejected attempt: the oracle's bad arguments) and a gold action.
    def at(d):
        return (
            None
            if d.deviation is None
            else d.deviation.turn
            if d.deviation.turn is not None
            else (d.deviation.call.turn if d.deviation.call else None)
        )

    (task, trial), diagnosis = next(
        (key, d) for key, d in diagnoses.items() if at(d) is not None and d.deviation and d.deviation.gold
    )
    assert diagnosis.deviation is not None and diagnosis.deviation.gold is not None
    page.goto(f"{sweep.page.as_uri()}#/config/{config_id}/task/{task}/{trial}")
    page.wait_for_selector("#diagnosis")
    assert diagnosis.category.value.replace("_", " ") in page.inner_text("#diagnosis .failure-category")
    decisive = page.locator(".message.decisive")
    assert decisive.count() == 1 and decisive.get_attribute("data-index") == str(at(diagnosis))
    assert diagnosis.deviation.gold.name in decisive.inner_text()
    assert diagnosis.deviation.gold.name in page.inner_text("#diagnosis .gold-action")
