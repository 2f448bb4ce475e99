"""cost.py: a job's GPU-hours added up over its invocations (a resume adds a span), with the
shared server's hours charged by its token share. The spans measured on real Slurm allocations
are tested in tests/tau_exp_launcher/test_slurm_launcher.py."""

from __future__ import annotations

import pytest

from tau_exp.job.cost import CostSpan, SharedServerUse, read_spans, summarize
from tau_exp.records import EpisodeResult, EpisodeStatus, ModelUsage

HOUR = 3600.0


def server(start: float, share: float, tokens: float | None = 1000.0) -> SharedServerUse:
    return SharedServerUse(
        roles=["user"], slurm_job_id="7", start=start, gres={"gpu": 8}, server_tokens=tokens, job_tokens=0, share=share
    )


def result(trial: int, status: EpisodeStatus, tokens: int) -> EpisodeResult:
    usage = {"assistant": ModelUsage(prompt_tokens=tokens, completion_tokens=tokens)}
    return EpisodeResult(task_id="0", trial=trial, seed=0, status=status, reward=1.0, usage=usage)


def test_a_resumed_job_adds_its_spans_and_pays_its_share_of_the_shared_server():
    first = CostSpan(start=0, end=2 * HOUR, gres={"gpu": 1}, shared=[server(start=HOUR, share=0.25)])
    resumed = CostSpan(start=10 * HOUR, end=11 * HOUR, gres={"gpu": 1, "cpu": 4}, shared=[])
    results = [result(0, EpisodeStatus.scored, 500), result(1, EpisodeStatus.infra_error, 250)]
    cost = summarize([first, resumed], results)
    assert cost.hours == 3
    assert cost.own_gres_hours == {"gpu": 3, "cpu": 4}
    assert cost.shared_gres_hours == {"gpu": 8 * 1 * 0.25}  # from when it answered the job, its share
    assert cost.gpu_hours == 5  # accelerators only: the CPUs are listed, not counted
    assert cost.tokens == 1500 and cost.scored_pairs == 1
    assert cost.tokens_per_gpu_hour == 300 and cost.gpu_hours_per_scored_pair == 5


def test_no_span_no_cost_and_no_gpus_no_ratios():
    assert summarize([], []) is None
    cost = summarize([CostSpan(start=0, end=HOUR)], [result(0, EpisodeStatus.scored, 10)])
    assert cost.gpu_hours == 0 and cost.tokens_per_gpu_hour is None and cost.gpu_hours_per_scored_pair is None


def test_a_server_without_metrics_is_flagged_and_a_torn_line_is_skipped(tmp_path):
    path = tmp_path / "cost.jsonl"
    span = CostSpan(start=0, end=HOUR, shared=[server(start=0, share=1.0, tokens=None)])
    path.write_text(span.model_dump_json() + "\n" + span.model_dump_json()[:20])
    (read,) = read_spans(path)
    cost = summarize([read], [])
    assert cost.shared_without_metrics and cost.gpu_hours == pytest.approx(8)
    assert read_spans(tmp_path / "missing.jsonl") == []
