"""The sweep browser: one self-contained HTML page to see why an agent failed, across models.

    python -m tau_exp.report SWEEP_DIR... --html     # writes browser.html next to report.md

The page opens from disk, with no server and no network (its script and style are inline). It
has four views: the sweep table (the report's rows, sortable), one configuration's tasks
(filters by outcome and termination reason, search over task ids and text), one task (the
conversation with tool calls and results, tau2's reward breakdown, tokens and timings), and the
same task side by side across configurations (with a filter for tasks where they disagree).

What it embeds, so that a sweep of 120 jobs × 100 tasks opens without freezing the browser:
- an index, parsed at load: the configurations and one small entry per (task, trial);
- the full records (conversation, reward breakdown, usage), one gzip+base64 block per job,
  left as inert text until a view needs that job; the page decompresses it then, with the
  browser's own DecompressionStream.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tau_exp import bench
from tau_exp.config import Benchmark
from tau_exp.records import EpisodeResult
from tau_exp.results.collect import Configuration
from tau_exp.results.diagnosis import Diagnosis
from tau_exp.results.inference import Difference
from tau_exp.results.modes import ConfigurationModes

BROWSER_FILE = "browser.html"


class EpisodeEntry(BaseModel):
    """What the task lists show of one (task, trial), without opening its job's block."""

    config: int  # index into the page's configurations
    task: str
    trial: int
    status: str  # scored | infra_error | harness_error
    reward: float | None
    success: bool
    termination: str | None
    turns: int
    tokens: int  # prompt + completion, both roles
    duration_s: float
    block: int  # which job's block holds the full record
    position: int  # where in that block
    failure: str | None = None  # the failure category of a failed or ended-early pair (diagnosis.py)


class BrowserConfig(BaseModel):
    """One row of the sweep table: the report's row, with its place in the page."""

    id: int
    label: str
    row: dict[str, Any]  # report.ConfigRow, as JSON


class BrowserIndex(BaseModel):
    generated_at: str
    paths: list[str]
    configs: list[BrowserConfig]
    episodes: list[EpisodeEntry]
    tasks: dict[str, dict[str, str]]  # env -> task id -> the user's instructions (tau2 tasks)
    # Pairs of configurations on one env compared on average reward (inference.Difference, with
    # `a` and `b` as configuration ids): the compare view's verdict.
    comparisons: list[dict[str, Any]] = []


def write_browser(
    groups: list[Configuration],
    paths: list[Path],
    path: Path,
    differences: Sequence[Difference] = (),
    modes: Sequence[ConfigurationModes] | None = None,
) -> Path:
    """Write the page for the report's configurations, in the table's order; `differences` (the
    report's paired comparisons, pairs.paired_differences) give the compare view its verdicts,
    `modes` (one per configuration, as the report made them; made here when not given) each
    failure's diagnosis."""
    configs: list[BrowserConfig] = []
    episodes: list[EpisodeEntry] = []
    blocks: list[str] = []
    for config_id, group in enumerate(groups):
        row, sources = group.row, group.sources
        configs.append(BrowserConfig(id=config_id, label=row.label, row=row.model_dump(mode="json")))
        diagnosed = (modes[config_id] if modes is not None else ConfigurationModes(group)).diagnoses
        for source in sources:
            diagnoses = [diagnosed.get(result.key) for result in source.results]
            episodes.extend(
                _entry(config_id, result, len(blocks), position, diagnosis)
                for position, (result, diagnosis) in enumerate(zip(source.results, diagnoses, strict=True))
            )
            blocks.append(_block(source.results, diagnoses))
    ids = {config.label: config.id for config in configs}
    comparisons = [
        {**d.model_dump(mode="json"), "a": ids[d.a], "b": ids[d.b]}
        for d in differences
        if d.metric == "avg_reward" and d.a in ids and d.b in ids  # a factor's pooled levels are no configuration
    ]
    index = BrowserIndex(
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        paths=[str(p) for p in paths],
        configs=configs,
        episodes=episodes,
        comparisons=comparisons,
        tasks=_task_instructions(
            {(c.row.env, result.task_id) for c in groups for source in c.sources for result in source.results}
        ),
    )
    path.write_text(_page(index, blocks), encoding="utf-8")
    return path


def _entry(
    config_id: int, result: EpisodeResult, block: int, position: int, diagnosis: Diagnosis | None
) -> EpisodeEntry:
    return EpisodeEntry(
        config=config_id,
        task=result.task_id,
        trial=result.trial,
        status=result.status.value,
        reward=result.reward,
        success=result.success,
        termination=result.termination_reason,
        turns=result.num_turns or len(result.messages),
        tokens=sum(u.prompt_tokens + u.completion_tokens for u in result.usage.values()),
        duration_s=round(result.duration_s, 3),
        block=block,
        position=position,
        failure=diagnosis.category.value if diagnosis else None,
    )


DETAILS = {"messages", "reward_info", "usage", "error", "started_at", "seed", "ended_by"}


def _block(results: list[EpisodeResult], diagnoses: list[Diagnosis | None]) -> str:
    """A job's full records with their diagnoses, as the page reads them: a JSON list, gzipped,
    base64. (pydantic writes NaN as null: the browser's JSON.parse would refuse the whole block
    for one NaN.)"""
    details = (
        "["
        + ",".join(
            result.model_dump_json(include=DETAILS)[:-1]
            + ',"diagnosis":'
            + (_diagnosis_json(diagnosis) if diagnosis is not None else "null")
            + "}"
            for result, diagnosis in zip(results, diagnoses, strict=True)
        )
        + "]"
    )
    return base64.b64encode(gzip.compress(details.encode(), compresslevel=9, mtime=0)).decode("ascii")


def _diagnosis_json(diagnosis: Diagnosis) -> str:
    """What the page's diagnosis panel shows: the category, the ending, the first decisive
    deviation with its gold action, the checks that failed and the tool-use errors."""
    shown = diagnosis.model_dump(
        mode="json", include={"category", "ending", "deviation", "read_only_deviations", "notes"}
    )
    checks = diagnosis.checks
    shown["failed_checks"] = checks.failed if checks else []
    shown["failed_outside_basis"] = checks.failed_outside_basis if checks else []
    errors = diagnosis.tool_errors
    shown["tool_errors"] = {
        "rejected": len(errors.rejected),
        "malformed": len(errors.malformed),
        "other_party": len(errors.other_party),
        "unknown_tool": len(errors.unknown_tool),
        "repeated": len(errors.repeated),
    }
    return json.dumps(shown)


def _task_instructions(tasks: set[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The user simulator's instructions for these (env, task id)s of tau2 (what the user wanted:
    the first thing to read when asking why a conversation failed). tau-bench v1 envs are left
    out: their tasks are not tau2's."""
    envs = {env for env, _ in tasks} & set(bench.domains(Benchmark.tau2))
    return {
        env: {
            task.id: _instructions(task)
            for task in bench.load_tasks(Benchmark.tau2, env, None)
            if (env, task.id) in tasks
        }
        for env in sorted(envs)
    }  # split None: every task of the domain


def _instructions(task: Any) -> str:
    purpose = getattr(task.description, "purpose", None) if task.description else None
    text = str(task.user_scenario.instructions)
    return f"Purpose: {purpose}\n{text}" if purpose else text


def _page(index: BrowserIndex, blocks: list[str]) -> str:
    assets = resources.files(__package__)
    template, style, app = (
        assets.joinpath(name).read_text(encoding="utf-8") for name in ("page.html", "style.css", "app.js")
    )
    block_tags = "\n".join(
        f'<script type="application/x-gzip-base64" id="block-{number}">{block}</script>'
        for number, block in enumerate(blocks)
    )
    parts = {
        "/*STYLE*/": style,
        "/*INDEX*/": _script_json(index.model_dump_json()),
        "/*APP*/": app,
        "<!--BLOCKS-->": block_tags,
    }
    # One pass: a marker inside an inserted part (a task's text, say) is not replaced again.
    return re.sub("|".join(re.escape(marker) for marker in parts), lambda match: parts[match.group(0)], template)


def _script_json(text: str) -> str:
    # Inside <script>, only "</script" (and "<!--") could end or change the element: escape every "<".
    return text.replace("<", "\\u003c")
