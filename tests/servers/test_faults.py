"""servers/faults.py: what an oracle with faults injected, read as the difference of its counts
and summed over a job's invocations; each count shown beside the requests its rate is a share
of. (Read from a real oracle by a real job: test_experiment.py::test_injected_faults_….)"""

from __future__ import annotations

from pathlib import Path

from tau_exp.config import ServerKind
from tau_exp.records import FaultCounts, Metrics
from tau_exp.servers.faults import FaultReading, counts_of, difference, may_be_oracle, summarize

OLD_JOB = Path(__file__).parents[1] / "fixtures" / "job_made_by_4bf382a"  # see test_compatibility.py


def test_the_counts_of_an_invocation_are_the_difference_of_the_servers_counts():
    before = {"requests": 10, "answered": 9, "fault_error": 1, "ok": 9}
    after = {"requests": 30, "answered": 26, "fault_error": 4, "ok": 25, "text_replies": 5, "fault_unhelpful": 1}
    counts = counts_of(difference(before, after), {"error_rate": 0.1}, shared=True)
    assert (counts.requests, counts.answered, counts.error, counts.text_replies, counts.unhelpful) == (20, 17, 3, 5, 1)
    # Counts that went back: the server's settings changed while the job ran, and it counted again.
    assert difference(before, {"requests": 4, "fault_error": 1}) == {"requests": 4, "fault_error": 1}


def test_a_jobs_invocations_add_up_per_server():
    def line(roles: list[str], rates: dict[str, float], **counts: int) -> dict:
        return FaultReading(roles=roles, counts=FaultCounts(rates=rates, shared=False, **counts)).model_dump()

    rows = [
        line(["assistant"], {"error_rate": 0.1}, requests=100, error=9),
        {"roles": ["assistant"], "counts": "not counts"},  # a line of another shape is not counted
        line(["assistant"], {"error_rate": 0.2}, requests=50, error=11),  # resumed with other settings
        line(["assistant", "user"], {"empty_rate": 0.5}, requests=8, answered=8, empty=4),  # one server of both
    ]
    totals = summarize(rows)
    assert totals is not None and set(totals) == {"assistant", "assistant+user"}
    assert (totals["assistant"].requests, totals["assistant"].error) == (150, 20)
    assert totals["assistant"].rates == {"error_rate": 0.2}  # the latest invocation's
    assert summarize([]) is None  # no server had faults: metrics.json says none


def test_each_count_is_shown_of_its_share_of_the_requests():
    counts = FaultCounts(
        rates={"error_rate": 0.1, "unhelpful_rate": 0.3, "bad_arguments_rate": 0.05},
        shared=False,
        requests=144,
        answered=130,
        text_replies=10,
        tool_call_replies=100,
        error=14,
        unhelpful=3,
    )
    assert counts.describe() == (
        "error 14 of 144 requests (rate 0.1) · unhelpful 3 of 10 text replies (rate 0.3)"
        " · bad_arguments 0 of 100 tool call replies (rate 0.05)"
    )


def test_the_user_faults_are_read_summed_and_shown_of_the_users_replies_they_can_spoil():
    stats = {"requests": 12, "answered": 12, "user_turns_midway": 4, "fault_user_stop": 1, "user_device_turns": 3}
    stats |= {"fault_user_skip_device": 3, "user_openings": 2, "fault_user_withhold": 1}
    rates = {"user_stop_rate": 0.2, "user_skip_device_rate": 1.0, "user_withhold_rate": 0.5}
    counts = counts_of(stats, rates, shared=False)
    twice = counts.plus(counts)
    assert (twice.user_stop, twice.user_turns_midway, twice.user_skip_device, twice.user_device_turns) == (2, 8, 6, 6)
    assert (twice.user_withhold, twice.user_openings, twice.requests) == (2, 4, 24)
    assert counts.describe() == (
        "user_stop 1 of 4 user turns midway (rate 0.2) · user_skip_device 3 of 3 user device turns (rate 1)"
        " · user_withhold 1 of 2 user openings (rate 0.5)"
    )


def test_metrics_of_earlier_versions_load_without_injected_faults():
    assert Metrics.model_validate_json((OLD_JOB / "metrics.json").read_text()).injected_faults is None


def test_only_servers_that_may_be_an_oracle_are_asked(oracle_model):
    model = oracle_model()
    assert may_be_oracle(model)  # the oracle kind
    model.server.kind = ServerKind.attach  # an attached server may be one: it is asked
    assert may_be_oracle(model)
    model.server.kind = ServerKind.vllm
    assert not may_be_oracle(model)
    model.server.kind = ServerKind.slurm
    assert not may_be_oracle(model)  # a shared server job of vLLM
    model.server.slurm.serves = ServerKind.oracle
    assert may_be_oracle(model)
