"""Failure modes per configuration, and which modes account for the difference between two.

Each (task, trial) of a configuration that failed or ended early has one category
(diagnosis.py, computed on read). A mode's rate is the share of the configuration's pairs in
it, with the task-level interval of inference.py (a pair in the mode counts 1, any other 0).
Between two compared configurations, each mode's rate is compared as any metric is: paired by
task, B − A, the paired t test, Holm across the modes of that pair — so "react fails less" can
be read as "react misses fewer required actions, and as many arguments are wrong".
"""

from __future__ import annotations

from collections.abc import Callable

from tau_exp.records import EpisodeResult
from tau_exp.results.collect import Configuration
from tau_exp.results.diagnosis import Category, Diagnosis, category_counts, diagnose, tools_of
from tau_exp.results.inference import Difference, Share, TaskTrials, compare, share

RATE = "rate of "  # a mode's metric name: "rate of missed_required_action"


class ModeRate(Share):
    """One failure mode of one configuration: the pairs in it, their rate and its interval."""

    label: str
    category: str


class ConfigurationModes:
    """A configuration's diagnoses, once, and each mode's per-task hits."""

    def __init__(self, configuration: Configuration) -> None:
        self.label = configuration.row.label
        self.records: list[EpisodeResult] = configuration.records
        tools = tools_of(configuration.sources[0].names)
        # Every failed or ended-early pair's diagnosis, by (task, trial): the report's tables, its
        # plot and the browser's page read them from here.
        self.diagnoses: dict[tuple[str, int], Diagnosis] = {
            r.key: d for r in self.records if (d := diagnose(r, None, tools)) is not None
        }
        self.counts: dict[Category, int] = category_counts(self.diagnoses.values())

    def is_in(self, category: Category) -> Callable[[EpisodeResult], bool]:
        """Whether a record of this configuration failed in `category`."""
        return lambda record: (d := self.diagnoses.get(record.key)) is not None and d.category == category

    def trials(self, category: Category) -> TaskTrials:
        """Per task, each pair as (1.0, True) in `category` and (0.0, False) otherwise."""
        return TaskTrials.of_hits(self.records, self.is_in(category))


def mode_rates(modes: list[ConfigurationModes]) -> list[ModeRate]:
    """Every mode of every configuration, with its rate and interval."""
    return [
        ModeRate(
            label=configuration.label,
            category=category.value,
            **share(configuration.records, configuration.is_in(category)).model_dump(),
        )
        for configuration in modes
        for category in configuration.counts
    ]


def mode_differences(modes: list[ConfigurationModes], differences: list[Difference]) -> list[Difference]:
    """For each compared pair of configurations (the avg_reward comparisons of `differences`,
    pooled levels left out), the paired difference B − A of each mode's rate that either arm
    has, Holm-corrected across the pair's modes (`family`: "modes of <A> vs <B>")."""
    by_label = {configuration.label: configuration for configuration in modes}
    out: list[Difference] = []
    for pair in differences:
        if pair.metric != "avg_reward" or pair.a not in by_label or pair.b not in by_label:
            continue
        a, b = by_label[pair.a], by_label[pair.b]
        categories = [c for c in Category if c in a.counts or c in b.counts]
        arms = {f"{side}|{c.value}": arm.trials(c) for side, arm in (("A", a), ("B", b)) for c in categories}
        compared = compare(arms, [(f"A|{c.value}", f"B|{c.value}") for c in categories], "avg_reward")
        for difference in compared:
            category = difference.a.split("|", 1)[1]
            verdict = difference.verdict  # "no detectable difference", or which arm fails this way more often
            if verdict != "no detectable difference":
                verdict = f"more often in {pair.b if difference.difference > 0 else pair.a}"
            out.append(
                difference.model_copy(
                    update={
                        "metric": RATE + category,
                        "a": pair.a,
                        "b": pair.b,
                        "verdict": verdict,
                        "family": f"modes of {pair.a} vs {pair.b}",
                        "same_data": pair.same_data,
                    }
                )
            )
    return out
