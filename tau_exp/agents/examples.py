"""Few-shot example files, for `agent=few_shot` (tau_exp's and tau-bench v1's: one format, a
JSON line per example with its `messages_display` text): read them, check them, and build one
from finished runs:

    python -m tau_exp.examples build RUN_DIR [RUN_DIR ...] -o examples.jsonl [--per-task N]

Takes the successful conversations (reward 1) of jobs that ran the **train** split — jobs on
the test or base split are refused, so that no test task can leak into a prompt — and writes
one JSON line per conversation with its `messages_display` text (the field tau-bench v1's
few-shot files used), its task id and its source.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tau_exp.config import FewShotConfig
from tau_exp.display import argument_parser
from tau_exp.errors import ConfigError, TauExpError
from tau_exp.files import write_atomically
from tau_exp.jobdir import JobDir
from tau_exp.records import EpisodeResult
from tau_exp.runtime import command_line


@functools.lru_cache(maxsize=8)
def load_examples(path: str) -> tuple[str, ...]:
    """The `messages_display` of every line; ConfigError names the file and line otherwise."""
    file = Path(path)
    if not file.exists():
        raise ConfigError(
            f"agent.few_shot.path={path} does not exist: build one with "
            "`python -m tau_exp.examples build RUN_DIR -o FILE`"
        )
    if not file.is_file():
        kind = "a directory" if file.is_dir() else "not a regular file (a device, a pipe?)"
        raise ConfigError(f"agent.few_shot.path={path} is {kind}: give the JSONL file of examples")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"agent.few_shot.path={path} is not UTF-8 text (byte {error.start}): give the JSONL file of examples"
        ) from None
    examples = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}:{number}: not JSON ({error.msg})") from None
        display = record.get("messages_display") if isinstance(record, dict) else None
        if not isinstance(display, str) or not display.strip():
            raise ConfigError(f'{path}:{number}: no "messages_display" text (each line needs one)')
        examples.append(display.strip())
    if not examples:
        raise ConfigError(f"agent.few_shot.path={path} holds no examples")
    return tuple(examples)


def check_examples(settings: FewShotConfig) -> None:
    """The checks `agent=few_shot` needs before anything starts."""
    if not settings.path:
        raise ConfigError(
            "agent=few_shot needs a file of examples: agent.few_shot.path=FILE "
            "(build one with `python -m tau_exp.examples build RUN_DIR -o FILE`)"
        )
    if settings.num < 1:
        raise ConfigError(f"agent.few_shot.num={settings.num} must be at least 1")
    available = len(load_examples(settings.path))
    if settings.num > available:
        raise ConfigError(f"agent.few_shot.num={settings.num} is more than the {available} examples in {settings.path}")


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
    job = JobDir(job_dir)
    metrics = job.read_metrics()
    if metrics is None or not job.results.is_file():
        raise TauExpError(f"{job_dir} is not a finished tau_exp job (no {job.metrics.name} or {job.results.name})")
    if metrics.split != "train":
        raise TauExpError(
            f"{job_dir} ran the {metrics.split!r} split: few-shot examples may only come from train-split runs "
            "(tasks.split=train), or test tasks would leak into the prompts"
        )
    return [result for result in job.read_results() if result.success and result.messages]


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.examples",
        __doc__,
        reads="build: each RUN_DIR, a finished tau_exp job directory (not a sweep directory) of the train split: "
        "its metrics.json (which split it ran) and results.jsonl (its conversations). tau-bench v1's few-shot "
        "files (agent.few_shot.path) are read by the jobs that use them, in the same format.",
        docs="docs/strategies.md",
    )
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
            lines.append(
                json.dumps(
                    {
                        "messages_display": display(result.messages),
                        "task_id": result.task_id,
                        "trial": result.trial,
                        "source": str(job_dir),
                    }
                )
            )
    if not lines:
        raise TauExpError("no successful conversation found in " + ", ".join(map(str, args.run_dirs)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.output, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} examples from {len(per_task)} tasks to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
