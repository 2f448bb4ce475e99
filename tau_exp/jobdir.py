"""The files of a job directory and of a sweep directory: every name in one place, and how each
file is read. What writes them: `job.checkpoint.ResultStore` (results, manifest, lock),
the pipeline (metrics), `job.outcome` (status), `job.cost` (cost.jsonl), `tracking.wandb_run`
(the W&B run id), Hydra (`.hydra/`, the job's log), the server kinds and `servers.load` and
`servers.faults` (`servers/`).

    <job dir>/results.jsonl        one EpisodeResult per line, appended; the latest of a (task, trial) wins
    <job dir>/results.torn.jsonl   an incomplete last line, set aside after a crash mid-write
    <job dir>/manifest.json        what the results mean (config.result_identity); checked on resume
    <job dir>/.results.lock        held by the job that writes the results
    <job dir>/metrics.json         the job's metrics (records.Metrics)
    <job dir>/status.json          how its last invocation went (records.JobStatus)
    <job dir>/.hydra/              Hydra's config of the latest invocation (and of every one: invocations/)
    <job dir>/servers/             logs of the servers the job started
    <job dir>/servers/<role>_metrics.jsonl   its server's /metrics and the job's in-flight limit, sampled
    <job dir>/servers/injected_faults.jsonl  per invocation, what each oracle with faults injected
    <job dir>/cost.jsonl           per invocation, the GPU-hours it held (its allocation, its share of shared servers)
    <job dir>/tau2.log             tau2's own warnings
    <job dir>/wandb_run_id         the W&B run a resume continues
    <job dir>/slurm_<id>.log       in a Slurm sweep: a link to the job's Slurm log
    <sweep dir>/multirun.yaml      Hydra's record of the sweep
    <sweep dir>/summary.csv, .md   the sweep summary (`tracking/sweep.py`)
    <sweep dir>/<n>_<env>_<agent>_<model>[_<swept>]/   its job directories

A job directory of a sweep is named by what tells it apart (conf/config.yaml, hydra.sweep.subdir):
its number, env, agent and model, then the values of the other keys the sweep varies
(`sweep_job_name`), e.g. `1_retail_tool_calling_oracle_temperature-0.7`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import operator
import re
import shlex
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import BaseModel, ValidationError

from tau_exp.errors import CheckpointError
from tau_exp.records import ConfigNames, EpisodeResult, JobStatus, Manifest, Metrics

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override
    from omegaconf import DictConfig


Record = TypeVar("Record", bound=BaseModel)


@dataclass(frozen=True)
class JobDir:
    """One job directory: its files by name, and readers that change nothing."""

    path: Path

    @property
    def results(self) -> Path:
        return self.path / "results.jsonl"

    @property
    def torn_results(self) -> Path:
        return self.path / "results.torn.jsonl"

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.path / ".results.lock"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def hydra_config(self) -> Path:
        return self.path / ".hydra" / "config.yaml"

    @property
    def servers(self) -> Path:
        return self.path / "servers"

    @property
    def cost(self) -> Path:
        """One line per invocation: what it held on the cluster (cost.CostSpan)."""
        return self.path / "cost.jsonl"

    @property
    def injected_faults(self) -> Path:
        """One line per invocation and oracle server with faults: what it injected (servers.faults.FaultReading)."""
        return self.servers / "injected_faults.jsonl"

    def server_metrics(self, role: str) -> Path:
        """What the server of `role` (assistant, user) reported while the job ran, one row per sample."""
        return self.servers / f"{role}_metrics.jsonl"

    @property
    def tau2_log(self) -> Path:
        return self.path / "tau2.log"

    @property
    def wandb_run_id(self) -> Path:
        return self.path / "wandb_run_id"

    def slurm_log(self, job_id: str) -> Path:
        return self.path / f"slurm_{job_id}.log"

    @overload
    def read_results(self) -> list[EpisodeResult]: ...

    @overload
    def read_results(self, record: type[Record]) -> list[Record]: ...

    def read_results(self, record: type[BaseModel] = EpisodeResult) -> list[Any]:
        """The latest record of every (task, trial), read only: no lock, nothing repaired (a torn
        last line, of a job still writing or killed, is left out). `record` may be a smaller
        model of the same lines (fewer fields, faster). CheckpointError names a malformed line."""
        path = self.results
        if path.exists() and not path.is_file():
            raise CheckpointError(f"{path} is not a regular file: move it away, or use a new output directory")
        if not path.exists():
            return []
        parsed = parse_results(path, path.read_bytes(), record)
        if parsed.torn.strip():  # every reader says what it could not read (the run loop repairs it)
            log.warning(
                "%s: its last line is torn (%d bytes, a record cut off by a crash or still being written): "
                "left out; resuming the job sets it aside and runs that pair again",
                path,
                len(parsed.torn),
            )
        records = parsed.records
        pair = operator.attrgetter("task_id", "trial")
        return list({pair(r): r for r in records}.values())

    def read_status(self) -> JobStatus | None:
        """status.json, or None if there is none (a job that never started) or it is unreadable."""
        try:
            return JobStatus.model_validate_json(self.status.read_text())
        except (OSError, ValueError):  # none yet, or not a file
            return None

    def read_metrics(self) -> Metrics | None:
        try:
            return Metrics.model_validate_json(self.metrics.read_text())
        except FileNotFoundError:
            return None

    def read_config(self) -> DictConfig:
        """The job's composed config, as Hydra saved it for its latest invocation."""
        from omegaconf import OmegaConf

        return OmegaConf.load(self.hydra_config)  # type: ignore[return-value]

    @property
    def hydra_overrides(self) -> Path:
        return self.path / ".hydra" / "overrides.yaml"

    def names(self) -> ConfigNames:
        return ConfigNames.of_job_config(self.read_config())

    def read_manifest(self) -> Manifest | None:
        """What gives the job's results their meaning (None: no result written yet)."""
        if not self.manifest.is_file():
            return None
        try:
            return Manifest.model_validate_json(self.manifest.read_text())
        except ValueError as error:
            raise CheckpointError(f"{self.manifest} is not a tau_exp manifest ({type(error).__name__})") from None

    def read_overrides(self) -> list[str]:
        """The command-line overrides of the job's latest invocation, as Hydra saved them."""
        return _saved_list(self.hydra_overrides) if self.hydra_overrides.exists() else []

    def swept(self, keys: Collection[str]) -> list[str]:
        """The job's overrides of `keys` (those its sweep varies: SweepDir.swept_keys)."""
        return [override for override in self.read_overrides() if _parse(override).key_or_group in keys]

    def resume_command(self) -> str:
        """The command that resumes this job, ready to copy: its latest invocation's overrides
        (as Hydra saved them) in this directory."""
        return shlex.join(["python", "launch.py", *self.read_overrides(), f"hydra.run.dir={self.path}"])


@dataclass(frozen=True)
class SweepDir:
    """One sweep directory: Hydra's record of the sweep, its summary, its job directories."""

    path: Path

    @property
    def multirun_yaml(self) -> Path:
        return self.path / "multirun.yaml"

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def summary_md(self) -> Path:
        return self.path / "summary.md"

    def resume_command(self) -> str:
        """The command that resumes the whole sweep, ready to copy: its overrides (Hydra's own
        too: the launcher and its settings) in this directory."""
        from omegaconf import OmegaConf

        saved = OmegaConf.load(self.multirun_yaml).hydra.overrides if self.multirun_yaml.exists() else None
        hydra = [
            o for o in (saved.hydra if saved else []) if not str(o).startswith(("hydra.sweep.dir=", "hydra.mode="))
        ]
        task = list(saved.task) if saved else []
        return shlex.join(
            ["python", "launch.py", "-m", *map(str, hydra), *map(str, task), f"hydra.sweep.dir={self.path}"]
        )

    def overrides(self) -> list[Override] | None:
        """The sweep's overrides as Hydra's basic sweeper expands them: the command line's and the
        sweeper's params (None without multirun.yaml)."""
        from omegaconf import OmegaConf

        if not self.multirun_yaml.exists():
            return None
        hydra_cfg = OmegaConf.load(self.multirun_yaml).hydra
        params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None) or {}
        arguments = [*map(str, hydra_cfg.overrides.task), *(f"{key}={value}" for key, value in params.items())]
        return _parser().parse_overrides(arguments)

    def swept_keys(self) -> list[str]:
        """The keys the sweep varies (given several values), in command-line order."""
        return [override.key_or_group for override in self.overrides() or [] if override.is_sweep_override()]

    def jobs(self) -> list[JobDir]:
        """The sweep's job directories (those Hydra gave a `.hydra/config.yaml`), in job order."""
        found = (JobDir(path.parent.parent) for path in self.path.glob("*/.hydra/config.yaml"))
        return sorted(found, key=_job_number)


# Keys whose value the job directory's name already shows (conf/config.yaml, hydra.sweep.subdir).
NAMED_KEYS = frozenset({"env", "env.name", "agent", "agent.name", "model", "model.name"})
SWEPT_SUFFIX_MAX = 80  # characters; a longer suffix is cut and ends with a hash of the whole


def sweep_job_name(base: str, sweep_dir: str, overrides: Iterable[str]) -> str:
    """The name of a job's directory in a sweep: `base` (`<n>_<env>_<agent>_<model>`) and its
    `swept_suffix`; `base` alone where the sweep directory already holds a job of that name (a
    sweep begun before names had the suffix resumes in its own directories)."""
    suffix = swept_suffix(sweep_dir, overrides)
    if suffix and JobDir(Path(sweep_dir) / base).hydra_config.exists():
        return base
    return base + suffix


def swept_suffix(sweep_dir: str, overrides: Iterable[str]) -> str:
    """The end of a job directory's name in a sweep: `_<key>-<value>` for each key the sweep varies
    that the name does not show yet (the shortest tail of the dotted key that no other such key
    shares: `model.temperature=0.7` → `_temperature-0.7`); empty if there is none.

    `overrides` are the job's (hydra.overrides.task); which keys vary, the sweep's multirun.yaml
    says (Hydra writes it before the jobs start). Only characters safe in a file name and in a
    Hydra override value (the resume advice's hydra.run.dir=<job dir>) are used."""
    swept = [key for key in SweepDir(Path(sweep_dir)).swept_keys() if key not in NAMED_KEYS]
    values = {override.key_or_group: override.get_value_element_as_str() for override in map(_parse, overrides)}
    short = _short_keys(swept)
    parts = [f"{_file_safe(short[key])}-{_file_safe(values[key])}" for key in swept if key in values]
    suffix = "_".join(parts)
    if len(suffix) > SWEPT_SUFFIX_MAX:
        digest = hashlib.sha1(suffix.encode()).hexdigest()[:8]
        suffix = f"{suffix[: SWEPT_SUFFIX_MAX - len(digest) - 1]}-{digest}"
    return f"_{suffix}" if suffix else ""


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key's shortest tail that no other key ends with."""
    short = {}
    for key in keys:
        parts = key.split(".")
        tails = (".".join(parts[-n:]) for n in range(1, len(parts) + 1))
        short[key] = next(
            (tail for tail in tails if not any(o != key and (o == tail or o.endswith("." + tail)) for o in keys)), key
        )
    return short


def path_safe(text: object) -> str:
    """`text` with every run of characters unsafe in a file name replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


def _file_safe(text: str) -> str:
    return path_safe(text).strip("_") or "_"


@functools.cache
def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parse(override: str) -> Override:
    return _parser().parse_override(override)


def _saved_list(path: Path) -> list[str]:
    from omegaconf import OmegaConf

    return [str(item) for item in OmegaConf.load(path)]


def _job_number(job: JobDir) -> tuple[int, str]:
    number = job.path.name.split("_")[0]  # directories are named <job number>_<env>_<agent>_<model>...
    return (int(number) if number.isdigit() else 1 << 30, job.path.name)


@dataclass(frozen=True)
class ParsedResults(Generic[Record]):
    records: list[Record]
    torn: bytes  # an incomplete last line (b"" if none)
    unterminated: bool  # the last record is whole but its final newline is missing


def parse_results(path: Path, data: bytes, record: type[Record]) -> ParsedResults[Record]:
    """The records of a results file, and its torn tail.

    A record is written with its newline in one write, so only the last, newline-less segment
    can be torn: every line that ends with a newline must be a valid record. A last segment that
    is a valid record without its newline is a record (the crash came between the two)."""
    *complete, tail = data.split(b"\n")
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            records.append(record.model_validate_json(line))
        except ValidationError as error:
            reason = error.errors()[0]["msg"] if error.errors() else str(error)
            raise CheckpointError(
                f"{path}:{number}: not a valid result record ({reason}); fix or delete that line, "
                "then rerun to resume (finished results are kept)"
            ) from None
    if tail.strip():
        try:
            return ParsedResults([*records, record.model_validate_json(tail)], b"", unterminated=True)
        except ValidationError:
            pass
    return ParsedResults(records, tail, unterminated=False)
