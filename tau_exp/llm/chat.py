"""`ChatModel`: one model as one episode sees it — every model call of the assistant and of the
user simulator goes through here, over HTTP through litellm.

It owns what makes a call robust and traceable: the endpoint (base URL, key) passed per call
(never through process-wide environment variables), the episode's tag as HTTP headers, the
sampling settings, retries with backoff on infrastructure failures, and the error taxonomy:
infrastructure failures become `InfraError` (never a reward); a context overflow or an empty
reply becomes `ModelFault` (the model's own failure: the conversation ends, tau2 scores it).
Each HTTP attempt waits for a slot of the job's in-flight limit to its server first
(`concurrency.py`); the request's timeout starts when it is sent, not while it waits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import litellm
import tenacity
from tau2.data_model.message import AssistantMessage, ToolCall

from tau_exp.config import ModelConfig, RetryConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import Cancelled, ConfigError, InfraError, ModelFault
from tau_exp.llm.concurrency import Slots
from tau_exp.llm.reasoning import strip_reasoning
from tau_exp.llm.tags import PURPOSE_HEADER, EpisodeTag
from tau_exp.records import ModelUsage

log = logging.getLogger(__name__)

# Failures worth another attempt: the server may come back (or the network hiccuped).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    litellm.exceptions.APIConnectionError,
    litellm.exceptions.Timeout,
    litellm.exceptions.InternalServerError,
    litellm.exceptions.ServiceUnavailableError,
    litellm.exceptions.BadGatewayError,
    litellm.exceptions.RateLimitError,
    litellm.exceptions.APIError,  # litellm's catch-all, e.g. a body that is not JSON
    json.JSONDecodeError,
)


# vLLM's and other servers' wording for a prompt that exceeds the context, when litellm does
# not map it to ContextWindowExceededError itself.
_OVERFLOW_MARKERS = ("context length", "context window", "maximum context", "max_model_len", "too many tokens")


def _is_context_overflow(error: BaseException) -> bool:
    if isinstance(error, litellm.exceptions.ContextWindowExceededError):
        return True
    return isinstance(error, litellm.exceptions.BadRequestError) and any(
        marker in str(error).lower() for marker in _OVERFLOW_MARKERS
    )


# What a server says when it has more requests than it can take: a signal to send fewer.
OVERLOAD_ERRORS: tuple[type[BaseException], ...] = (
    litellm.exceptions.Timeout,
    litellm.exceptions.RateLimitError,
    litellm.exceptions.ServiceUnavailableError,
)


def _is_transient(error: BaseException) -> bool:
    if isinstance(
        error,
        (
            litellm.exceptions.BadRequestError,
            litellm.exceptions.AuthenticationError,
            litellm.exceptions.NotFoundError,
            litellm.exceptions.PermissionDeniedError,
        ),
    ):
        return False
    return isinstance(error, TRANSIENT_ERRORS)


def validate(role: str, model: ModelConfig) -> None:
    """The model's litellm provider exists (with a typo, every call of the job would fail)."""
    if model.provider not in litellm.provider_list:
        raise ConfigError(
            f"{role}.provider={model.provider!r} is not a litellm provider: for OpenAI-compatible servers use "
            "hosted_vllm (vLLM) or openai"
        )


class ChatModel:
    """A model endpoint bound to one episode's tag, settings, retry policy and cancel flag."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: ModelConfig,
        retry: RetryConfig,
        tag: EpisodeTag,
        cancel: threading.Event | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.slots = slots  # the job's in-flight limit to this server (None: no limit)
        self.settings = settings
        self.retry = retry
        self.tag = tag
        self.cancel = cancel or threading.Event()
        self.seed: int | None = None
        self.stats = ModelUsage()  # what this role's calls in this episode cost

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, purpose: str = "reply"
    ) -> AssistantMessage:
        """One chat completion, retried on transient failures; returns tau2's AssistantMessage.

        `purpose` says what the call is for (a reply, or a strategy's verify/reflect step); it
        travels as a header with the episode's tag, for tracing and for the oracle."""
        return self._to_message(self.response(messages, tools, purpose))

    def response(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, purpose: str = "reply"
    ) -> Any:
        """The same call, returning litellm's response as it came (for code that reads it
        itself, such as tau-bench v1's agents); token counts are recorded either way."""
        kwargs: dict[str, Any] = dict(
            model=self.endpoint.litellm_model,
            messages=messages,
            api_base=self.endpoint.base_url,
            api_key=self.endpoint.api_key or "EMPTY",
            extra_headers={**self.tag.headers(), PURPOSE_HEADER: purpose},
            timeout=self.settings.timeout_s,
            max_retries=0,  # retries are ours (below), not the HTTP client's
            **self.settings.llm_args,
        )
        if self.settings.temperature is not None:  # None: the server's default
            kwargs["temperature"] = self.settings.temperature
        if self.settings.max_tokens is not None:
            kwargs["max_tokens"] = self.settings.max_tokens
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = "auto"

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=tenacity.wait_exponential(multiplier=self.retry.initial_backoff_s, max=self.retry.max_backoff_s)
            + tenacity.wait_random(0, self.retry.initial_backoff_s),  # jitter: retries do not stampede
            retry=tenacity.retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        started = time.perf_counter()
        try:
            for attempt in retrying:
                with attempt:
                    if self.cancel.is_set():
                        raise Cancelled()
                    response = self._send(kwargs)
        except (Cancelled, InfraError):
            raise
        except Exception as error:
            if _is_context_overflow(error):
                raise ModelFault(self.tag.role, self._describe(error)) from None
            attempts = self.retry.attempts if _is_transient(error) else 1
            raise InfraError(f"{self._describe(error)} (after {attempts} attempt{'s' * (attempts > 1)})") from None
        finally:
            self.stats.calls += 1
            self.stats.latency_s += time.perf_counter() - started
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.stats.prompt_tokens += usage.prompt_tokens or 0
            self.stats.completion_tokens += usage.completion_tokens or 0
        return response

    def _send(self, kwargs: dict[str, Any]) -> Any:
        """One HTTP attempt, in a slot of the job's limit (the wait for it is not the request's:
        its timeout starts here, when it is sent)."""
        if self.slots is None:
            return litellm.completion(**kwargs)
        ticket = self.slots.acquire(self.cancel)
        sent = time.perf_counter()
        latency_s, overloaded = None, False
        try:
            response = litellm.completion(**kwargs)
            latency_s = time.perf_counter() - sent
            return response
        except OVERLOAD_ERRORS:
            overloaded = True
            raise
        finally:
            self.slots.release(ticket, latency_s, overloaded)

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Cancelled()

    def _before_retry(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        log.debug("%s: retrying after %s", self.tag, state.outcome.exception() if state.outcome else "?")

    def _describe(self, error: BaseException) -> str:
        message = " ".join(str(error).split())
        if self.endpoint.api_key:  # never let a key reach a log or a result record
            message = message.replace(self.endpoint.api_key, "***")
        message = message[:300]
        return f"{self.tag.role} model {self.endpoint.model!r} at {self.endpoint.base_url}: {type(error).__name__}: {message}"

    def _to_message(self, response: Any) -> AssistantMessage:
        usage = getattr(response, "usage", None)
        try:
            choice = response.choices[0].message
        except (AttributeError, IndexError) as error:
            raise InfraError(self._describe(error)) from None
        tool_calls = [
            ToolCall(
                id=call.id or f"call_{i}",
                name=call.function.name or "",
                arguments=_parse_arguments(call.function.arguments),
            )
            for i, call in enumerate(choice.tool_calls or [])
        ]
        # Thinking that a server without a reasoning parser leaves in the text is not for the
        # other party (a separate `reasoning_content` field is ignored in the same spirit).
        content = strip_reasoning(choice.content)
        if not content and not tool_calls:
            # What it sent instead (thinking only, say) is what explains the failure.
            sent = f": {choice.content[:1000]!r}, nothing of it but thinking" if choice.content else ""
            raise ModelFault(self.tag.role, f"{self.tag.role} model {self.endpoint.model!r} sent an empty reply{sent}")
        return AssistantMessage(
            role="assistant",
            content=content or None,
            tool_calls=tool_calls or None,
            usage={"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
            if usage
            else None,
        )


UNPARSED_ARGUMENTS = "__unparsed_arguments__"


def _parse_arguments(raw: str | dict | None) -> dict[str, Any]:
    """Tool-call arguments as a dict. Arguments that are not a JSON object are the model's
    mistake: they are kept under one key, so the tool call fails in the environment and tau2
    counts it as an error of the conversation (max_errors), as the benchmark does."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {UNPARSED_ARGUMENTS: raw}
    return parsed if isinstance(parsed, dict) else {UNPARSED_ARGUMENTS: raw}
