"""llm.py: model calls over real HTTP through litellm to oracle servers that inject faults.
Transient failures are retried; persistent ones become InfraError (never a reply); a tool
call with malformed arguments is the model's fault and is kept as such; keys never leak."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import httpx
import litellm
import pytest

from tau_exp.endpoint import Endpoint
from tau_exp.errors import Cancelled, InfraError
from tau_exp.llm.chat import UNPARSED_ARGUMENTS, ChatModel
from tau_exp.llm.settings import CallSettings, Retry
from tau_exp.llm.tags import EpisodeTag

TAG = EpisodeTag("retail", "5", 0, "assistant")
FAST_RETRY = Retry(attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)
OPENING = [{"role": "assistant", "content": "Hi! How can I help you today?"}, {"role": "user", "content": "hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "find_user_id_by_name_zip", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.fixture
def oracle(oracle_faults, oracle_model):
    """`with oracle(**faults) as (endpoint, model)`: the session's faulty assistant oracle with
    those faults (its counts start again), and a model config for it."""

    @contextmanager
    def use(**faults):
        yield oracle_faults(assistant=faults)["assistant"], oracle_model()

    return use


def stats(endpoint) -> dict[str, int]:
    return httpx.get(endpoint.base_url.removesuffix("/v1") + "/oracle/stats").json()


def test_reply_is_the_next_gold_action_as_a_tool_call(oracle):
    with oracle() as (endpoint, model):
        reply = ChatModel(endpoint, CallSettings.of(model), FAST_RETRY, TAG).complete(OPENING, TOOLS)
    assert reply.tool_calls[0].name == "find_user_id_by_name_zip"
    assert reply.tool_calls[0].arguments == {"first_name": "Mei", "last_name": "Kovacs", "zip": "28236"}
    assert reply.usage["completion_tokens"] > 0


def test_transient_5xx_is_retried_until_it_succeeds(oracle):
    with oracle(error_rate=0.5, seed=3) as (endpoint, model):
        chat = ChatModel(
            endpoint, CallSettings.of(model), Retry(attempts=30, initial_backoff_s=0.01, max_backoff_s=0.02), TAG
        )
        for _ in range(5):
            assert chat.complete(OPENING, TOOLS).tool_calls
        served = stats(endpoint)
    assert served["fault_error"] > 0, served
    assert chat.stats.retries == served["fault_error"]  # every failure retried once by us, none by the HTTP client
    assert served["requests"] == served["fault_error"] + 5


@pytest.mark.parametrize("fault", ["error_rate", "timeout_rate", "drop_rate", "malformed_rate"])
def test_persistent_infra_faults_become_infra_errors_after_the_retries(oracle, fault):
    with oracle(**{fault: 1.0, "hang_s": 2.0}) as (endpoint, model):
        model.timeout_s = 0.5
        chat = ChatModel(
            endpoint, CallSettings.of(model), Retry(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02), TAG
        )
        with pytest.raises(
            InfraError, match=r"assistant model 'oracle' at http://127.0.0.1:\d+/v1: .*after 3 attempts"
        ):
            chat.complete(OPENING, TOOLS)
        assert stats(endpoint)["requests"] == 3


def test_an_unreachable_server_is_an_infra_error(oracle_model):
    with socket.socket() as closed:  # a port nothing listens on any more
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", "oracle", api_key="k")
    chat = ChatModel(endpoint, CallSettings.of(oracle_model()), FAST_RETRY, TAG)
    with pytest.raises(InfraError, match="after 4 attempts"):
        chat.complete(OPENING, TOOLS)


def test_a_wrong_key_is_an_infra_error_without_retries_and_without_the_key(oracle):
    with oracle() as (endpoint, model):
        wrong = type(endpoint)(endpoint.base_url, endpoint.model, endpoint.provider, "not-the-key-" + "x" * 20)
        with pytest.raises(InfraError, match="AuthenticationError") as caught:
            ChatModel(wrong, CallSettings.of(model), FAST_RETRY, TAG).complete(OPENING, TOOLS)
        assert stats(endpoint).get("requests", 0) == 0
    assert "not-the-key" not in str(caught.value)
    assert endpoint.api_key not in repr(endpoint)


def test_malformed_tool_arguments_are_the_models_fault_not_an_infra_error(oracle):
    with oracle(bad_arguments_rate=1.0) as (endpoint, model):
        reply = ChatModel(endpoint, CallSettings.of(model), FAST_RETRY, TAG).complete(OPENING, TOOLS)
    assert reply.tool_calls[0].name == "find_user_id_by_name_zip"
    assert UNPARSED_ARGUMENTS in reply.tool_calls[0].arguments


def test_a_cancelled_run_makes_no_more_calls(oracle):
    with oracle() as (endpoint, model):
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(Cancelled):
            ChatModel(endpoint, CallSettings.of(model), FAST_RETRY, TAG, cancel).complete(OPENING, TOOLS)
        assert stats(endpoint).get("requests", 0) == 0


def test_thinking_left_in_the_text_is_not_passed_on(oracle_model):
    # A real litellm response, as a server without a reasoning parser returns it.
    response = litellm.ModelResponse(
        choices=[
            {
                "message": {
                    "role": "assistant",
                    "content": "<think>\nThe user wants a refund.\n</think>\n\nI can help with that.",
                    "reasoning_content": "separate reasoning",
                }
            }
        ]
    )
    chat = ChatModel(Endpoint("http://127.0.0.1:9/v1", "m"), CallSettings.of(oracle_model()), FAST_RETRY, TAG)
    assert chat._to_message(response).content == "I can help with that."
