"""One short label per configuration, unique among the configurations shown together, built
from what sets them apart: the names and settings whose values differ between them.

`compare`, the report's tables and plots, the browser and the sweep summary all label a
configuration with `labels(...)` of the configurations they show, so a label reads the same
everywhere; the full identity stays in the tables' columns and in `--json`.

    retail · react                       (a sweep over env and agent)
    unhelpful_rate=0.3                   (two runs that differ only in a fault rate)
    react · model.temperature=0.5        (and model and user temperatures both vary elsewhere)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Names shown by their value alone (a model id without its organisation); every other key of an
# identity is shown as key=value.
BARE_KEYS = ("env", "agent", "model")
NAME_KEYS = ("env", "split", "agent", "model", "user", "user_strategy")
DERIVED_KEYS = frozenset({"data"})  # follow from other keys (the env's task data): shown only when they tell apart
ABSENT = "(unset)"  # a key one configuration has and another lacks (e.g. a tau2 file's settings)


def short_name(model: str) -> str:
    """A model id without its organisation (Qwen/Qwen3-4B → Qwen3-4B), for labels."""
    return model.rsplit("/", 1)[-1]


def varying_keys(identities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose values differ between these identities (absent counts as a value), in
    first-seen order: the names first, then the settings."""
    keys = list(dict.fromkeys(key for identity in identities for key in identity))
    return [key for key in keys if len({canonical(identity.get(key, ABSENT)) for identity in identities}) > 1]


def labels(identities: Sequence[Mapping[str, Any]]) -> list[str]:
    """A label per identity (a flat mapping: the names of NAME_KEYS, then settings), unique among
    them. One identity alone is labelled by its env, agent and model."""
    if not identities:
        return []
    keys = _telling_keys(identities) or [key for key in BARE_KEYS if key in identities[0]]
    shown = _short_keys([key for key in keys if key not in BARE_KEYS])
    out = [" · ".join(_part(key, identity.get(key, ABSENT), shown) for key in keys) for identity in identities]
    # Keys equal in JSON but told apart by type (1 vs "1") are the only way two labels can meet.
    seen: dict[str, int] = {}
    for index, label in enumerate(out):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            out[index] = f"{label} #{seen[label]}"
    return out


def _telling_keys(identities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The varying keys, in order, but for the task data where it follows from the other keys
    (each env has its own): a consequence, not a choice, it adds nothing to a label. Chosen keys
    that vary together (agent and model, say) are all shown: the label must not hide a confound."""
    keys = varying_keys(identities)
    chosen = [key for key in keys if key not in DERIVED_KEYS]
    for key in (key for key in keys if key in DERIVED_KEYS):
        groups: dict[tuple[str, ...], set[str]] = {}
        for identity in identities:
            seen = tuple(canonical(identity.get(k, ABSENT)) for k in chosen)
            groups.setdefault(seen, set()).add(canonical(identity.get(key, ABSENT)))
        if any(len(values) > 1 for values in groups.values()):
            chosen.append(key)
    return sorted(chosen, key=keys.index)


def _part(key: str, value: Any, shown: Mapping[str, str]) -> str:
    if key in BARE_KEYS:
        return short_name(str(value)) if key == "model" else str(value)
    text = short_name(str(value)) if key == "user" else _value(value)
    return f"{shown[key]}={text}"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def canonical(value: Any) -> str:
    """A value as one text, equal exactly when the values are (lists and dicts too, which cannot
    key a dict themselves)."""
    return json.dumps(value, sort_keys=True, default=str)


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its shortest last parts that no other of `keys` ends with
    (model.server.oracle.faults.unhelpful_rate → unhelpful_rate)."""
    short = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                short[key] = suffix
                break
        else:
            short[key] = key
    return short
