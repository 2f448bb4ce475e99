"""The README and the docs site (docs/, mkdocs.yml): every command a user would copy works, or
says what it needs.

Each command of a ```bash block in README.md or docs/ is one of:
- run here: the ten-minute tour (TOUR), as written — on the oracle models at its own small size —
  but attached to the session's oracle servers instead of starting its own;
- marked with what it needs that a test machine lacks, by a `# needs …` comment: on a line of its
  own (the whole block) or at the command's end (that command);
- known safe: setting up the environment (SAFE), the README's two commands (test_readme.py; CI
  runs the test command), or a `python launch.py` command on the oracle models, whose config is
  composed and validated here without running it.
Every `python launch.py` command in the docs, marked or not, in inline code too, must compose
against conf/ and the schema: a renamed key or option fails here, not in a user's hands. A usage
line with placeholders (`[--json]`) goes in a ```text block: it is not a command to copy.
Every `python -m tau_exp.<tool> --help` says what the tool reads and names a docs page that exists.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tau_exp.config import to_experiment_config
from tests.test_readme import MAIN_COMMAND, TEST_COMMAND

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 300

# The tour of the README and docs/getting-started.md, in order: each step reads the one before.
TOUR = (
    "python launch.py env=airline tasks.end=3 run.num_trials=2 hydra.run.dir=outputs/tour/job",
    "python launch.py -m agent=tool_calling,react tasks.end=3 hydra.sweep.dir=outputs/tour/sweep",
    "python -m tau_exp.compare outputs/tour/sweep",
    "python -m tau_exp.report outputs/tour/sweep --html",
)
SAFE = re.compile(r"source \.venv/bin/activate|export [A-Z_]+=\S+|python launch\.py (--help|--cfg job)")
NEEDS = re.compile(r"#\s*needs\b\s*(.*)")
PLACEHOLDERS = ("...", "…")


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    where: str  # file:line
    needs: str | None  # what a `# needs …` mark says it needs


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def bash_commands(path: Path) -> list[Command]:
    """Every command of the file's ```bash blocks, continuation lines joined."""
    lines = path.read_text().splitlines()
    name = path.relative_to(ROOT)
    commands: list[Command] = []
    number = 0
    while number < len(lines):
        if lines[number].strip() != "```bash":
            number += 1
            continue
        end = lines.index("```", number + 1)
        block = lines[number + 1 : end]
        block_needs = next((m.group(1) for line in block if (m := NEEDS.match(line.strip()))), None)
        pending, start = "", 0
        for offset, line in enumerate(block, start=number + 2):
            if not pending:
                start = offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text, pending = (pending + line).strip(), ""
            if not text or text.startswith("#"):
                continue
            own = NEEDS.search(text)
            argv = tuple(shlex.split(text, comments=True))
            commands.append(Command(argv, f"{name}:{start}", own.group(1) if own else block_needs))
        number = end + 1
    return commands


def all_commands() -> list[Command]:
    return [command for path in markdown_files() for command in bash_commands(path)]


def inline_launch_commands() -> list[Command]:
    """`python launch.py …` in inline code (tables, prose), without placeholders like <this job>."""
    found = []
    for path in markdown_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for text in re.findall(r"`(python launch\.py[^`]*)`", line):
                if "<" not in text and not any(mark in text for mark in PLACEHOLDERS):
                    found.append(Command(tuple(shlex.split(text)), f"{path.relative_to(ROOT)}:{number}", None))
    return found


def is_launch(command: Command) -> bool:
    return command.argv[:2] == ("python", "launch.py")


def how_it_is_covered(command: Command) -> str | None:
    text = shlex.join(command.argv)
    if command.argv in TOUR_ARGVS:
        return "run"
    if command.needs:
        return "marked"
    if text in (shlex.join(shlex.split(MAIN_COMMAND)), shlex.join(shlex.split(TEST_COMMAND))) or SAFE.fullmatch(text):
        return "safe"
    if is_launch(command):
        return "composed"
    return None


TOUR_ARGVS = {tuple(shlex.split(step)) for step in TOUR}


def overrides(command: Command) -> list[str] | None:
    """The command's overrides, each sweep by its first value; None for one that reads a config
    directory of the user's own."""
    parser = OverridesParser.create()
    args, found = list(command.argv[2:]), []
    while args:
        arg = args.pop(0)
        if arg in ("-m", "--multirun", "--help") or arg in PLACEHOLDERS:
            continue
        if arg == "--cfg":
            args.pop(0)
            continue
        if arg == "--config-dir":
            return None
        override = parser.parse_overrides([arg])[0]
        if override.is_sweep_override():
            arg = f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
        found.append(arg)
    return found


# --- fast: the shape of the docs --------------------------------------------------------------


def test_the_readme_is_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines; move material into docs/ (at most {MAX_README_LINES})"
    )


def test_every_docs_page_is_in_the_nav():
    def pages(entries) -> list[str]:
        found = []
        for entry in entries:
            value = entry if isinstance(entry, str) else next(iter(entry.values()))
            found += [value] if isinstance(value, str) else pages(value)
        return found

    nav = pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    on_disk = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk


def test_the_readmes_links_into_the_docs_exist():
    links = re.findall(r"\]\((docs/[^)#]+)", README.read_text())
    assert links and not [link for link in links if not (ROOT / link).is_file()]


def test_every_command_is_run_marked_or_safe():
    uncovered = [f"{c.where}: {shlex.join(c.argv)}" for c in all_commands() if how_it_is_covered(c) is None]
    assert not uncovered, (
        "commands in ```bash blocks that no test runs and that say nothing of what they need; add them to "
        "TOUR, or mark them (# needs a Slurm cluster), or make a usage line a ```text block:\n" + "\n".join(uncovered)
    )


def test_the_tour_is_in_the_readme_and_in_getting_started():
    for path in (README, DOCS / "getting-started.md"):
        argvs = [command.argv for command in bash_commands(path)]
        steps = [argv for argv in argvs if argv in TOUR_ARGVS]
        assert steps == [tuple(shlex.split(step)) for step in TOUR], f"{path.name}: the tour is not TOUR, in order"


@pytest.mark.slow  # 32 configs composed: 7-24 s on 2 cores (by load), too long for the fast tier
def test_every_launch_command_composes(compose_cfg):
    """Marked commands too: only their servers are missing here, not their keys."""
    checks: dict[tuple[str, ...], tuple[Command, bool]] = {}  # the same overrides composed once
    for command in [c for c in all_commands() if is_launch(c)] + inline_launch_commands():
        args = overrides(command)
        if args is not None:
            validate = how_it_is_covered(command) == "composed" or checks.get(tuple(args), (command, False))[1]
            checks[tuple(args)] = (command, validate)
    assert len(checks) > 20
    failures = []
    for args, (command, validate) in checks.items():
        try:
            cfg = compose_cfg(*args)
            if validate:
                to_experiment_config(cfg)
        except Exception as error:
            failures.append(f"{command.where}: {shlex.join(command.argv)}\n    {str(error).splitlines()[0]}")
    assert not failures, "\n".join(failures)


def test_the_config_reference_names_every_key(compose_cfg):
    """The generator behind docs/reference/config.md (a mkdocs hook) covers the composed config."""
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
    assert spec and spec.loader
    reference = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = reference  # its dataclasses look their module up there
    spec.loader.exec_module(reference)
    text = reference.render()

    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [key for name, value in node.items() for key in leaves(value, f"{prefix}{name}.")]
        return [prefix[:-1]]

    def shown(key: str) -> bool:  # itself, or as the section it repeats (`user.server.vllm`: as `model.server.vllm`)
        return f"`{key}`" in text or any(
            key.startswith(f"{alias}.") and shown(original + key[len(alias) :]) for alias, original in repeats
        )

    repeats = re.findall(r"`([\w.]+)`: as \[`([\w.]+)`\]", text)
    keys = leaves(OmegaConf.to_container(compose_cfg(), resolve=False))
    assert len(keys) > 50
    assert not [key for key in keys if not shown(key)]
    assert "conf/hydra/launcher/slurm_gaudi.yaml" in text  # every group's options, hydra's included


def command_line_tools() -> dict[str, str]:
    """What a user types after `python -m tau_exp.` → the module whose `main` it runs: the aliases
    at the package's top (tau_exp/<tool>.py) and the sub-packages' __main__.py."""
    package = ROOT / "tau_exp"
    tools = {p.stem: f"tau_exp.{p.stem}" for p in package.glob("*.py") if '__name__ == "__main__"' in p.read_text()}
    return tools | {p.parent.name: f"tau_exp.{p.parent.name}.__main__" for p in package.glob("*/__main__.py")}


def test_every_tool_is_found():
    expected = {"audit", "report", "compare", "status", "sweep", "examples", "export", "servers", "oracle"}
    assert expected <= set(command_line_tools())


@pytest.mark.parametrize("tool", sorted(command_line_tools()))
def test_every_tools_help_says_what_it_reads_and_names_its_docs_page(tool, capsys):
    """`python -m tau_exp.<tool> --help` (in this process: 8 tools in ~2 s, not 8 interpreters)."""
    main = importlib.import_module(command_line_tools()[tool]).main
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m tau_exp.{tool} ")
    assert re.search(r"^reads: \S", text, re.MULTILINE), f"{tool} --help does not say what it reads"
    docs_line = re.search(r"^docs:\s+(.*)$", text, re.MULTILINE)
    pages = re.findall(r"docs/[\w/.-]+\.md", docs_line.group(1)) if docs_line else []
    assert pages, f"{tool} --help names no docs page"
    assert all((ROOT / page).is_file() for page in pages), pages


# --- slow: the tour, run -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_tour_runs_as_the_docs_say(tmp_path, launch, attached):
    """Each step as written, in a fresh directory, attached to the session's oracle servers (the
    tour's own would start two per job) and without W&B; then what the docs say of each."""
    for step in TOUR:
        argv = shlex.split(step)
        if argv[:2] == ["python", "launch.py"]:
            done = launch([*argv[2:], *attached, "tracking=none"], cwd=tmp_path)
        else:
            done = subprocess.run(
                [sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
            )
        assert done.returncode == 0, f"{step}\n{done.stderr[-3000:]}"
        if "tau_exp.compare" in step:
            assert "no detectable difference" in done.stdout

    metrics = json.loads((tmp_path / "outputs/tour/job/metrics.json").read_text())
    assert (metrics["n_tasks"], metrics["n_trials"], metrics["avg_reward"]) == (3, 2, 1.0)
    assert set(metrics["pass_hat_k"]) == {"1", "2"}
    sweep = tmp_path / "outputs/tour/sweep"
    assert {path.name for path in sweep.glob("*_oracle")} == {"0_retail_tool_calling_oracle", "1_retail_react_oracle"}
    assert all((sweep / name).is_file() for name in ("summary.md", "report.md", "comparisons.md", "browser.html"))
