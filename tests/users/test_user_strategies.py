"""Every user strategy end to end over HTTP against the oracle (which answers replies, react
replies, verifications and reflections): the conversations score 1.0, and verify/reflection
catch off-script replies and replace them."""

from __future__ import annotations

import pytest

from tau_exp import experiment
from tau_exp.users.react import user_response
from tests.support.oracle_chat import stats


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["retail", "airline", "telecom"])
@pytest.mark.parametrize("strategy", ["llm", "react", "verify", "reflection"])
def test_every_user_strategy_runs_end_to_end(tmp_path, compose_cfg, attached, strategy, domain):
    """1.0 everywhere; in telecom (test tasks 10 and 11: the user acts on their phone in several
    turns) no react, verification or reflection step swallows a tool call of the user."""
    tasks = ["tasks.start=10", "tasks.end=12"] if domain == "telecom" else ["tasks.end=2"]
    metrics = experiment.run(compose_cfg(f"env={domain}", *tasks, f"user_strategy={strategy}", *attached), tmp_path)
    assert (metrics.user_strategy, metrics.n_results, metrics.avg_reward) == (strategy, 2, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["verify", "reflection"])
def test_off_script_replies_are_caught_and_replaced(tmp_path, compose_cfg, attach_to, oracle_faults, strategy):
    # The user oracle goes off script in half its replies; the strategy's checks must catch them.
    faulty = oracle_faults(user={"unhelpful_rate": 0.5, "seed": 1})
    cfg = compose_cfg("tasks.end=3", f"user_strategy={strategy}", "user.verify_attempts=6", *attach_to(faulty))
    metrics = experiment.run(cfg, tmp_path)
    assert (metrics.n_results, metrics.avg_reward) == (3, 1.0)
    assert stats(faulty["user"])["fault_unhelpful"] > 0
    # Each conversation needed more user calls than its two messages.
    assert metrics.usage["user"].calls > 3 * 2


@pytest.mark.slow
def test_the_llm_user_alone_does_not_catch_off_script_replies(tmp_path, compose_cfg, attach_to, oracle_faults):
    faulty = attach_to(oracle_faults(user={"unhelpful_rate": 1.0}))
    cfg = compose_cfg("tasks.end=3", "user_strategy=llm", *faulty)
    metrics = experiment.run(cfg, tmp_path)
    # Every reply off script and nobody checks: the user never states a request or stops.
    assert (metrics.n_results, metrics.avg_reward) == (3, 0.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Thought:\nI should ask about my order.\n\nUser Response:\nWhere is my order #W123?",
            "Where is my order #W123?",
        ),
        ("<think>hmm</think>Thought: fine\nUser Response: ###STOP###", "###STOP###"),
        ("user response: thanks, that is all", "thanks, that is all"),
        ("Thought: I only thought", "I only thought"),
        ("Just a plain reply.", "Just a plain reply."),
    ],
)
def test_react_user_replies_are_read_from_real_looking_outputs(text, expected):
    assert user_response(text) == expected
