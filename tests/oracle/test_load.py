"""oracle/load.py: an oracle with a capacity serves that many requests at once and queues the
rest first come, first served, and says so on a `/metrics` page with vLLM's names, types and
labels; a client that gives up waiting is aborted, as vLLM aborts it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tau_exp.config import ModelConfig
from tau_exp.endpoint import Endpoint
from tau_exp.servers import provide
from tau_exp.servers.load import metrics_url, read_sample
from tests.support.oracle_chat import chat
from tests.support.vllm_metrics import assert_like_vllm, families


def capacity_model(oracle_model, **settings) -> ModelConfig:
    model: ModelConfig = oracle_model()
    for key, value in settings.items():
        setattr(model.server.oracle, key, value)
    return model


@pytest.fixture(scope="module")
def limited_oracle(oracle_model, tmp_path_factory) -> Iterator[Endpoint]:
    """An oracle serving 2 requests at once, each for 1 s."""
    model = capacity_model(oracle_model, capacity=2, service_s=1.0)
    with provide("assistant", model, tmp_path_factory.mktemp("limited_oracle")) as endpoint:
        yield endpoint


def test_requests_beyond_the_capacity_wait_first_come_first_served_and_metrics_say_so(limited_oracle, wait_until):
    """Two run, the next three wait; they are served in the order they came; running, waiting,
    KV-cache usage, token counters and prefix-cache hits read back as vLLM's."""
    client = httpx.Client()
    finished: list[int] = []
    lock = threading.Lock()

    def call(number: int) -> None:
        assert (
            chat(limited_oracle, "0", [{"role": "user", "content": "Hi, I want to return an order."}]).status_code
            == 200
        )
        with lock:
            finished.append(number)

    def arrived() -> float:
        """Requests running, waiting or served."""
        page = families(client.get(metrics_url(limited_oracle)).text)
        served = sum(s.value for s in page["vllm:request_success"][1] if s.name.endswith("_total"))
        sample = read_sample(client, limited_oracle)
        assert sample is not None
        seen.append(sample)
        return sample.running + sample.waiting + served

    seen: list = []
    threads = []
    for number in range(5):
        threads.append(threading.Thread(target=call, args=(number,)))
        threads[-1].start()
        # Sent one after another: each has reached the server before the next is sent.
        wait_until(lambda n=number: arrived() == n + 1, what=f"request {number} reaching the server")
    assert max(s.running for s in seen) == 2 and max(s.waiting for s in seen) >= 1
    assert all(s.kv_cache_usage == s.running / 2 for s in seen)
    for thread in threads:
        thread.join(timeout=30)
    assert finished[2:] == [2, 3, 4]  # the queue is first come, first served

    values = assert_like_vllm(client.get(metrics_url(limited_oracle)).text, limited_oracle.model)
    assert values["vllm:num_requests_running"] == values["vllm:num_requests_waiting"] == 0
    assert values["vllm:prompt_tokens_total"] > 0 and values["vllm:generation_tokens_total"] > 0
    # The same conversation side sent the same first message five times: all but the first hit.
    assert 0 < values["vllm:prefix_cache_hits_total"] < values["vllm:prefix_cache_queries_total"]


def test_a_client_that_gives_up_waiting_is_aborted_and_leaves_the_queue(limited_oracle, wait_until):
    """A request that timed out in the queue is not served later (vLLM aborts it too): the
    server's place goes to the next request."""
    client = httpx.Client()

    def finished(reason: str) -> float:
        page = families(client.get(metrics_url(limited_oracle)).text)
        return sum(s.value for s in page["vllm:request_success"][1] if s.labels["finished_reason"] == reason)

    served_before, aborted_before = finished("stop"), finished("abort")
    hold = [
        threading.Thread(target=chat, args=(limited_oracle, "0", [{"role": "user", "content": "hi"}])) for _ in range(2)
    ]
    for thread in hold:
        thread.start()
    wait_until(lambda: (s := read_sample(client, limited_oracle)) and s.running == 2, what="two requests running")
    with pytest.raises(httpx.TimeoutException):
        chat(limited_oracle, "1", [{"role": "user", "content": "hi"}], timeout_s=0.1)
    wait_until(lambda: read_sample(client, limited_oracle).waiting == 0, what="the aborted request leaving the queue")
    for thread in hold:
        thread.join(timeout=30)
    assert (finished("stop") - served_before, finished("abort") - aborted_before) == (2, 1)


def test_an_oracle_without_metrics_has_no_metrics_page(oracle_model, tmp_path):
    with provide("assistant", capacity_model(oracle_model, metrics=False), tmp_path) as endpoint:
        assert httpx.get(metrics_url(endpoint)).status_code == 404
        assert read_sample(httpx.Client(), endpoint) is None
