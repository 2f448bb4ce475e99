"""Which configurations are compared, and in which families their p-values are corrected.

A researcher reads a sweep along its axes: react against tool_calling *with everything else
held fixed*. So by default two configurations on one env are compared when their identities
(labels.py: names, data, settings) differ in exactly one key, the factor; Holm's correction runs
per factor and metric, so each family is one question. Per factor, a pooled answer too: level A
against level B over every cell (the values of the other factors) that has both, as a paired
difference per task of the mean over those cells (tasks are resampled, so a task shared by
the cells counts once). It answers "on average over these cells"; read the cells when their
effects differ in sign (docs/statistics.md).

Runs passed together that are not a sweep's grid (a configuration on its env that differs from
every other in more than one key) are compared pair by pair, as are all with `all_pairs`; with
a baseline, the baseline with every other configuration on its env.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tau_exp.errors import TauExpError
from tau_exp.records import TaskData
from tau_exp.results.collect import Configuration
from tau_exp.results.inference import Difference, TaskTrials, compare
from tau_exp.results.labels import canonical, labels, varying_keys

ALL_PAIRS = "all pairs"
BASELINE = "baseline"
POOLED = ", pooled"  # the suffix of a factor's pooled family


class Family(NamedTuple):
    """Comparisons whose p-values are corrected together (Holm, per metric)."""

    name: str  # the factor (a key of the identity), ALL_PAIRS, BASELINE, or "<factor>, pooled"
    pairs: list[tuple[str, str]]  # (A, B) labels


@dataclass(frozen=True)
class PooledTrials(TaskTrials):
    """One level of a factor over several cells: a task's value is the mean of its values in the
    cells (the tasks every cell ran)."""

    cells: tuple[TaskTrials, ...] = field(default=())

    def per_task(self, metric: str) -> dict[str, float]:
        values = [cell.per_task(metric) for cell in self.cells]
        shared = set.intersection(*(set(v) for v in values)) if values else set()
        return {task: sum(v[task] for v in values) / len(values) for task in sorted(shared)}

    @property
    def max_trials(self) -> int:
        return min((cell.max_trials for cell in self.cells), default=0)


def paired_differences(
    configurations: list[Configuration],
    baseline: str | None = None,
    require_shared_tasks: bool = True,
    all_pairs: bool = False,
) -> list[Difference]:
    """B − A of average reward and each pass^k (up to the fewest trials of any configuration),
    for the pairs of the families above, p-values Holm-corrected per family and metric. Each
    says whether both ran the same benchmark data (`same_data`: False when their data differ —
    not like for like; None when one of them does not say).
    TauExpError: an unknown baseline, or a pair that shares no task (left out instead without
    `require_shared_tasks`: a report of unrelated runs has nothing to pair)."""
    arms: dict[str, TaskTrials] = {c.row.label: TaskTrials.of(c.records) for c in configurations}
    data = {c.row.label: c.row.task_data for c in configurations}
    families = comparison_families(configurations, baseline, all_pairs)
    for family in families:
        unshared = [(a, b) for a, b in family.pairs if not set(arms[a].trials) & set(arms[b].trials)]
        if unshared and require_shared_tasks:
            a, b = unshared[0]
            raise TauExpError(f"{a} and {b} share no task: a paired comparison needs the same tasks in both")
        family.pairs[:] = [pair for pair in family.pairs if pair not in unshared]
    families += _pooled(configurations, families, arms, data)
    shared_k = min((trials.max_trials for trials in arms.values()), default=0)
    return [
        difference.model_copy(
            update={"same_data": same_data(data.get(difference.a), data.get(difference.b)), "family": family.name}
        )
        for metric in ["avg_reward", *(f"pass^{k}" for k in range(1, shared_k + 1))]
        for family in families
        for difference in compare(arms, family.pairs, metric)
    ]


def comparison_families(
    configurations: list[Configuration], baseline: str | None = None, all_pairs: bool = False
) -> list[Family]:
    """The families of comparisons: the baseline's, all pairs, or one per factor of the sweep."""
    by_env: dict[str, list[Configuration]] = defaultdict(list)
    for configuration in configurations:
        by_env[configuration.row.env].append(configuration)
    if baseline is not None:
        chosen = _baseline([c.row.label for c in configurations], baseline)
        env = next(c.row.env for c in configurations if c.row.label == chosen)
        return [Family(BASELINE, [(chosen, c.row.label) for c in by_env[env] if c.row.label != chosen])]
    factors: dict[str, list[tuple[str, str]]] = defaultdict(list)
    unstructured: list[tuple[str, str]] = []
    for group in by_env.values():
        axis_pairs = [(a, b, key) for a, b in itertools.combinations(group, 2) if (key := _factor(a, b)) is not None]
        partnered = {c.row.label for a, b, _ in axis_pairs for c in (a, b)}
        if all_pairs or len(partnered) < len(group):  # not a grid: every pair, as runs passed together
            unstructured += [(a.row.label, b.row.label) for a, b in itertools.combinations(group, 2)]
        else:
            for a, b, key in axis_pairs:
                factors[key].append((a.row.label, b.row.label))
    families = [Family(key, pairs) for key, pairs in factors.items()]
    return families + ([Family(ALL_PAIRS, unstructured)] if unstructured else [])


def _factor(a: Configuration, b: Configuration) -> str | None:
    """The one key in which two configurations differ (None: they differ in more)."""
    keys = varying_keys([a.identity, b.identity])
    return keys[0] if len(keys) == 1 else None


def _pooled(
    configurations: list[Configuration],
    families: list[Family],
    arms: dict[str, TaskTrials],
    data: dict[str, TaskData | None],
) -> list[Family]:
    """Per factor and pair of its levels seen in two or more cells: the levels' pooled arms
    (added to `arms`, named `<factor>=<level>`) in a family of their own."""
    by_label = {c.row.label: c for c in configurations}
    pooled: list[Family] = []
    for family in families:
        if family.name in (ALL_PAIRS, BASELINE):
            continue
        # A factor's levels may be lists or dicts (a swept setting): the cells are keyed by their text.
        cells: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        levels: dict[tuple[str, str], tuple[Any, Any]] = {}
        for a, b in family.pairs:
            level_a, level_b = by_label[a].identity.get(family.name), by_label[b].identity.get(family.name)
            key = (canonical(level_a), canonical(level_b))
            cells[key].append((a, b))
            levels[key] = (level_a, level_b)
        pairs = []
        for key, cell_pairs in cells.items():
            level_a, level_b = levels[key]
            if len(cell_pairs) < 2:
                continue
            names = labels([{family.name: level_a}, {family.name: level_b}])
            if names[0] == names[1]:  # 1 and "1": no pooled name tells them apart
                continue
            name_a, name_b = (f"{name} (pooled over {len(cell_pairs)} cells)" for name in names)
            arms[name_a] = PooledTrials({}, tuple(arms[a] for a, _ in cell_pairs))
            arms[name_b] = PooledTrials({}, tuple(arms[b] for _, b in cell_pairs))
            shared = {by_label[a].row.task_data for a, b in cell_pairs} | {
                by_label[b].row.task_data for a, b in cell_pairs
            }
            data[name_a] = data[name_b] = shared.pop() if len(shared) == 1 else None
            pairs.append((name_a, name_b))
        if pairs:
            pooled.append(Family(family.name + POOLED, pairs))
    return pooled


def same_data(a: TaskData | None, b: TaskData | None) -> bool | None:
    """Whether two configurations ran the same benchmark data: the same package, version and
    fingerprint (None: one of them does not say which data it ran)."""
    if a is None or b is None or a.fingerprint is None or b.fingerprint is None:
        return None
    return a == b


def data_note(same: bool | None) -> str:
    """A comparison's task data, as tables show it."""
    return {True: "same", False: "DIFFERENT", None: "unknown"}[same]


def _baseline(labels_: list[str], wanted: str) -> str:
    matches = [label for label in labels_ if label == wanted] or [label for label in labels_ if wanted in label]
    if len(matches) != 1:
        raise TauExpError(
            f"--baseline {wanted!r} {'matches none' if not matches else 'matches several'} of the configurations: "
            + "; ".join(labels_)
        )
    return matches[0]
