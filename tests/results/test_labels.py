"""labels.py: one short label per configuration, unique among those shown, from what differs."""

from __future__ import annotations

from tau_exp.results.labels import ABSENT, labels

BASE = {"env": "retail", "split": None, "agent": "react", "model": "Qwen/Qwen3-4B", "user": "org/u", "seed": 1}


def test_a_label_holds_only_what_differs_settings_by_their_shortest_unambiguous_key():
    faults = "model.server.oracle.faults.unhelpful_rate"
    identities = [{**BASE, faults: 0.0}, {**BASE, faults: 0.3}]
    assert labels(identities) == ["unhelpful_rate=0.0", "unhelpful_rate=0.3"]
    both = [{**BASE, "model.temperature": t, "user.temperature": u} for t, u in ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0))]
    assert labels(both) == [
        "model.temperature=0.0 · user.temperature=0.0",
        "model.temperature=0.5 · user.temperature=0.0",
        "model.temperature=0.5 · user.temperature=1.0",
    ]


def test_names_show_by_value_and_one_configuration_by_env_agent_and_model():
    sweep = [{**BASE, "env": env, "agent": agent} for env in ("retail", "airline") for agent in ("react", "act")]
    assert labels(sweep) == ["retail · react", "retail · act", "airline · react", "airline · act"]
    assert labels([BASE]) == ["retail · react · Qwen3-4B"]
    assert labels([{**BASE, "user": "org/a"}, {**BASE, "user": "org/b"}]) == ["user=a", "user=b"]


def test_a_setting_one_configuration_lacks_still_tells_them_apart():
    """A tau2 results file may not record a setting a job records: absent is a value of its own,
    so a setting that is None in one and missing in the other cannot merge the two labels."""
    first, second = labels([{**BASE, "model.max_tokens": None}, BASE])
    assert first != second and second == f"max_tokens={ABSENT}"


def test_labels_are_unique_even_where_values_print_alike():
    assert labels([{**BASE, "seed": 1}, {**BASE, "seed": "1"}]) == ["seed=1", "seed=1 #2"]


def test_a_key_that_follows_from_another_is_left_out():
    """Each env has its own task data: `data` varies, but with env, so the labels are the envs."""
    identities = [{**BASE, "env": env, "data": f"tau2 {env} fingerprint"} for env in ("retail", "telecom")]
    assert labels(identities) == ["retail", "telecom"]
    identities.append({**BASE, "env": "retail", "data": "tau2 newer fingerprint"})
    assert labels(identities) == [
        "retail · data=tau2 retail fingerprint",
        "telecom · data=tau2 telecom fingerprint",
        "retail · data=tau2 newer fingerprint",
    ]
