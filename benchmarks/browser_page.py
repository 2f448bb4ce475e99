"""The sweep browser at scale: a sweep of JOBS × 100 tasks (copies of real records under new
task ids), its page written as `report --html` writes it, then opened in headless Chromium.

Measured: the time of the sweep's whole report (`report --html`: tables, comparisons along the
sweep's axes, plots, page) and how many comparisons it holds; the time to write the page and its size; in the browser, the time until the sweep
table shows, until a configuration's task list shows, until a task's conversation shows (the
only step that decompresses a job's records), the longest main-thread block while doing so
(what a user feels as a freeze), and the JavaScript heap afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

from tau_exp.records import EpisodeResult
from tau_exp.results.browser import write_browser
from tau_exp.results.collect import find_configurations
from tau_exp.results.report import main as report_cli

TASKS_PER_JOB = 100
CHROMIUM = Path(os.environ.get("TAU_EXP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-precise-memory-info",
]  # else performance.memory is rounded to 10 MB steps
# Long tasks: the main thread busy for 50 ms or more (the browser's own definition).
WATCH_LONG_TASKS = """window.longestTaskMs = 0;
new PerformanceObserver((list) => list.getEntries().forEach((entry) => {
  window.longestTaskMs = Math.max(window.longestTaskMs, entry.duration); })).observe({type: "longtask", buffered: true});"""


# A large sweep's grid: agent strategies × user strategies × assistant models (3 × 4 × 10 = 120).
AGENTS = ("tool_calling", "react", "act")
USER_STRATEGIES = ("llm", "react", "verify", "reflection")


def synthetic_sweep(records: list[EpisodeResult], jobs: int, directory: Path) -> Path:
    """`jobs` job directories of TASKS_PER_JOB records each, cycled from `records`: one
    configuration per job, laid out on a grid of agents × user strategies × models as a large
    sweep's report has it."""
    for job in range(jobs):
        agent = AGENTS[job % len(AGENTS)]
        strategy = USER_STRATEGIES[job // len(AGENTS) % len(USER_STRATEGIES)]
        model = f"model{job // (len(AGENTS) * len(USER_STRATEGIES))}"
        job_dir = directory / f"{job}_retail_{agent}_{model}_{strategy}"
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / ".hydra" / "config.yaml").write_text(
            f"env: {{name: retail}}\nagent: {{name: {agent}}}\nmodel: {{name: org/{model}}}\n"
            f"user: {{name: sim, strategy: {strategy}}}\n"
        )
        with open(job_dir / "results.jsonl", "w") as results:
            for task in range(TASKS_PER_JOB):
                record = records[(job + task) % len(records)]
                results.write(record.model_copy(update={"task_id": str(task), "trial": 0}).model_dump_json() + "\n")
    return directory


def launch_chromium(playwright):
    """Headless Chromium from the system package (scripts/install_chromium.sh), fresh profile."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def measure(records: list[EpisodeResult], jobs: int, workdir: Path) -> dict:
    sweep = synthetic_sweep(records, jobs, workdir / "browser_sweep")
    # The report of the sweep, as `python -m tau_exp.report SWEEP --html` makes it: its tables,
    # its comparisons along the sweep's axes, its plots and the page.
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        report_cli([str(sweep), "--html", "-o", str(workdir / "browser_report")])
    report_s = time.perf_counter() - started
    comparisons = sum(1 for _ in open(workdir / "browser_report" / "comparisons.csv")) - 1
    started = time.perf_counter()
    page_path = write_browser(find_configurations([sweep]), [sweep], sweep / "browser.html")
    write_s = time.perf_counter() - started
    html = page_path.read_text(encoding="utf-8")
    index = html[html.index('id="index">') : html.index("</script>", html.index('id="index">'))]
    section = {
        "jobs": jobs,
        "tasks_per_job": TASKS_PER_JOB,
        "report_s": report_s,
        "comparisons": comparisons,
        "write_s": write_s,
        "page_mb": page_path.stat().st_size / 1e6,
        "index_mb": len(index) / 1e6,
    }
    if not CHROMIUM.exists():
        return {**section, "browser": f"not measured: no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        page.add_init_script(WATCH_LONG_TASKS)
        started = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="commit")
        page.wait_for_selector("#sweep-table tbody tr")
        section["sweep_table_s"] = time.perf_counter() - started
        page.wait_for_load_state("domcontentloaded")
        section["page_parsed_s"] = time.perf_counter() - started
        started = time.perf_counter()
        page.click(f"#sweep-table tbody tr:nth-child({jobs // 2 + 1}) td:nth-child(2) a")
        page.wait_for_selector("#task-table tbody tr")
        section["task_list_s"] = time.perf_counter() - started
        started = time.perf_counter()
        page.click(f"#task-table tbody tr:nth-child({TASKS_PER_JOB // 2}) a")
        page.wait_for_selector(".conversation > li")
        section["task_view_s"] = time.perf_counter() - started
        section["longest_main_thread_block_ms"] = page.evaluate("window.longestTaskMs")
        section["js_heap_mb"] = page.evaluate("performance.memory.usedJSHeapSize") / 1e6
        browser.close()
    return section
