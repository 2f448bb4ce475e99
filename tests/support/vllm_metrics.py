"""What makes a `/metrics` page vLLM's, for the oracle's tests and the real vLLM server's: the
names this project reads, with vLLM's types and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tau_exp.servers.load import COUNTERS, GAUGES, LABELS, QUEUE_TIME_HISTOGRAM, SUCCESS_COUNTER


def families(text: str) -> dict[str, tuple[str, list]]:
    """Family name → (type, samples) of a Prometheus text page."""
    return {family.name: (family.type, family.samples) for family in text_string_to_metric_families(text)}


def assert_like_vllm(text: str, model: str) -> dict[str, float]:
    """Every gauge and counter this project reads is on the page with vLLM's type and labels
    (`engine`, `model_name`), each counter as `_total` with a `_created` gauge beside it; returns the
    values of the model's series by sample name."""
    found = families(text)
    values: dict[str, float] = {}
    for name, kind in [*((n, "gauge") for n in GAUGES), *((n, "counter") for n in COUNTERS)]:
        assert name in found, f"{name} is not on the page"
        assert found[name][0] == kind, f"{name} is a {found[name][0]}, not a {kind}"
        samples = [s for s in found[name][1] if s.labels.get("model_name") == model]
        assert samples, f"{name} has no series for model_name={model!r}"
        for sample in samples:
            assert set(LABELS) <= set(sample.labels), f"{name} lacks labels {LABELS}: {sample.labels}"
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
        if kind == "counter":
            assert {s.name for s in samples} == {f"{name}_total"}, {s.name for s in samples}
            assert found.get(f"{name}_created", ("none",))[0] == "gauge", f"{name}_created is not a gauge"
    assert found[SUCCESS_COUNTER][0] == "counter"
    assert {"finished_reason", *LABELS} <= set(found[SUCCESS_COUNTER][1][0].labels)
    assert found[QUEUE_TIME_HISTOGRAM][0] == "histogram"
    return values
