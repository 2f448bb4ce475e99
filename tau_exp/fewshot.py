"""Build a few-shot examples file for `agent=few_shot` from finished runs:

    python -m tau_exp.fewshot build RUN_DIR [RUN_DIR ...] -o examples.jsonl [--per-task N]

Takes the successful conversations (reward 1) of jobs that ran the **train** split — jobs on
the test or base split are refused, so that no test task can leak into a prompt — and writes
one JSON line per conversation with its `messages_display` text (the field tau-bench v1's
few-shot files used), its task id and its source.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tau_exp.checkpoint import RESULTS_FILE
from tau_exp.errors import TauExpError
from tau_exp.files import write_atomically
from tau_exp.records import EpisodeResult
from tau_exp.runtime import command_line


def display(messages: list[dict[str, Any]]) -> str:
    """A conversation as text: one `role: content` line per message, tool calls as JSON actions."""
    lines = []
    for message in messages:
        role = message.get("role")
        for call in message.get("tool_calls") or []:
            lines.append(f"{role}: " + json.dumps({"name": call["name"], "arguments": call["arguments"]}))
        if message.get("content"):
            lines.append(f"{role}: {message['content']}")
    return "\n".join(lines)


def successful_conversations(job_dir: Path) -> list[EpisodeResult]:
    """The scored, successful results of a train-split job; TauExpError for anything else."""
    metrics_path, results_path = job_dir / "metrics.json", job_dir / RESULTS_FILE
    if not metrics_path.is_file() or not results_path.is_file():
        raise TauExpError(f"{job_dir} is not a finished tau_exp job (no metrics.json or {RESULTS_FILE})")
    split = json.loads(metrics_path.read_text()).get("split")
    if split != "train":
        raise TauExpError(
            f"{job_dir} ran the {split!r} split: few-shot examples may only come from train-split runs "
            "(tasks.split=train), or test tasks would leak into the prompts"
        )
    results = []
    for line in results_path.read_text().splitlines():
        if line.strip():
            result = EpisodeResult.model_validate_json(line)
            if result.success and result.messages:
                results.append(result)
    return results


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tau_exp.fewshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="collect successful train-split conversations into a JSONL file")
    build.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    build.add_argument("-o", "--output", type=Path, required=True, help="the JSONL file to write")
    build.add_argument("--per-task", type=int, default=1, help="conversations kept per task (default 1)")
    args = parser.parse_args(argv)

    per_task: dict[str, int] = defaultdict(int)
    lines = []
    for job_dir in args.run_dirs:
        for result in successful_conversations(job_dir):
            if per_task[result.task_id] >= args.per_task:
                continue
            per_task[result.task_id] += 1
            lines.append(json.dumps({"messages_display": display(result.messages), "task_id": result.task_id,
                                     "trial": result.trial, "source": str(job_dir)}))
    if not lines:
        raise TauExpError("no successful conversation found in " + ", ".join(map(str, args.run_dirs)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.output, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} examples from {len(per_task)} tasks to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
