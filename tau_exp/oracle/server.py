"""The oracle's OpenAI-compatible HTTP API (`/health`, `/v1/models`, `/v1/chat/completions`),
with artificial latency and injected faults, a capacity and service times (`load.py`) and
vLLM's Prometheus `/metrics`, run by uvicorn on a socket bound to port 0.

Run it with `python -m tau_exp.oracle --port-file F` (what the `oracle` server kind does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import socket
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tau_exp.config import FaultConfig, OracleConfig
from tau_exp.display import argument_parser
from tau_exp.files import write_atomically
from tau_exp.llm.tags import PURPOSE_HEADER, EpisodeTag
from tau_exp.oracle.load import ServerLoad
from tau_exp.oracle.script import SPOILS, OracleScript, Reply, UserFault, UserStep, spoiled_user_reply
from tau_exp.records import FAULT_SHARES
from tau_exp.runtime import prepare_process
from tau_exp.servers.oracle import API_KEY_ENV, settings_from_json


class _DroppedConnection(Response):
    """Sends the status line and headers, then fails: uvicorn closes the connection mid-reply."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        raise ConnectionAbortedError("oracle fault: connection dropped")


class _Behaviour:
    """What a request meets that `PUT /oracle/settings` may change while the server runs: the
    latency and the faults, drawn from one generator seeded with `faults.seed` (reseeded by a
    change, so that a server given new settings answers as a new server with them would)."""

    def __init__(self, settings: OracleConfig) -> None:
        self.settings = settings
        self.faults, self.latency_s = settings.faults, settings.latency_s
        self.rng = random.Random(settings.faults.seed)


def create_app(model: str, settings: OracleConfig | None = None, api_key: str | None = None) -> FastAPI:
    """The oracle app serving `model` with `settings` (latency, faults); `GET /oracle/stats`
    counts what it answered — each fault injected, and the requests each fault rate is a share of
    (`requests`, `answered`, `text_replies`, `tool_call_replies`, and as the user
    `user_turns_midway`, `user_device_turns`, `user_openings`: config.FaultConfig) — and
    `GET /oracle/settings` says its latency and faults now (what a job reads to report what was
    injected: servers/faults.py). `PUT /oracle/settings` (the same JSON as `--settings`) changes
    its latency and faults while it runs — one server for many fault settings, for tests and
    benchmarks; its draws and counts then start again, as a new server's would. Faults are drawn
    per request from one generator seeded with `faults.seed`."""
    settings = settings or OracleConfig()
    now = _Behaviour(settings)
    script = OracleScript()
    stats: Counter[str] = Counter()
    load = ServerLoad(model, settings.capacity, settings.service_s, settings.service_s_per_token)
    limited = bool(settings.capacity or settings.service_s or settings.service_s_per_token)
    first_request_at: list[float] = []  # unix time; the benchmark's time-to-first-request reads it from the log

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        first = f"; first request at {first_request_at[0]:.3f} (unix time)" if first_request_at else ""
        print(f"oracle stopping; answered {dict(stats)}{first}", flush=True)

    app = FastAPI(title="tau_exp oracle", docs_url=None, redoc_url=None, lifespan=lifespan)

    def unauthorized(request: Request) -> JSONResponse | None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            stats["unauthorized"] += 1
            return JSONResponse({"error": {"message": "invalid API key", "type": "authentication_error"}}, 401)
        return None

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return unauthorized(request) or JSONResponse(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "tau_exp-oracle"}]}
        )

    @app.get("/oracle/stats")
    async def get_stats() -> dict[str, int]:
        return dict(stats)

    @app.get("/oracle/settings")
    async def get_settings(request: Request) -> Response:
        return unauthorized(request) or JSONResponse(_settings_json(now))

    @app.put("/oracle/settings")
    async def put_settings(request: Request) -> Response:
        nonlocal now
        if (refusal := unauthorized(request)) is not None:
            return refusal
        try:
            new = settings_from_json((await request.body()).decode())
        except Exception as error:  # the schema's own message names the key
            return _error(422, f"not oracle settings: {str(error).splitlines()[0]}")
        fixed = ("capacity", "service_s", "service_s_per_token", "metrics")
        changed = [key for key in fixed if getattr(new, key) != getattr(settings, key)]
        if changed:
            return _error(409, f"{', '.join(changed)} cannot change while the server runs: start another oracle")
        now = _Behaviour(new)
        stats.clear()  # counted again from here, as by a new server
        return JSONResponse(_settings_json(now))

    @app.get("/metrics")
    async def metrics() -> Response:  # no key needed, as with vLLM
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if not settings.metrics:
            return Response(status_code=404)
        return Response(generate_latest(load.registry), media_type=CONTENT_TYPE_LATEST)

    async def served(request: Request, body: dict[str, Any], tag: EpisodeTag, completion: dict[str, Any]) -> Response:
        """The completion, once the server had room for it and served it (an abort if the
        client left first)."""
        usage = completion["usage"]
        if limited:
            service = asyncio.ensure_future(load.serve(usage["completion_tokens"]))
            gone = asyncio.ensure_future(_disconnected(request))
            await asyncio.wait({service, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not service.done():
                service.cancel()
                load.aborted()
                stats["aborted"] += 1
                return Response(status_code=499)
            gone.cancel()
            service.result()
        load.served(body, f"{tag}", usage["prompt_tokens"], usage["completion_tokens"])
        return JSONResponse(completion)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        if (refusal := unauthorized(request)) is not None:
            return refusal
        stats["requests"] += 1
        if not first_request_at:
            first_request_at.append(time.time())
        body = await request.json()
        refused = _refused(body, model)
        if refused is not None:
            stats["refused"] += 1
            return refused
        tag = EpisodeTag.from_headers(request.headers)
        if tag is None:
            stats["untagged"] += 1
            return _error(400, "the oracle needs the X-Tau-Exp-* headers that tau_exp sends with every call")
        try:
            task = script.task(tag.domain, tag.task_id, tag.bench, tag.split)
        except KeyError as error:
            return _error(404, str(error))
        faults, rng = now.faults, now.rng
        if now.latency_s:
            await asyncio.sleep(now.latency_s)

        draw = rng.random()
        for kind, rate in (
            ("error", faults.error_rate),
            ("timeout", faults.timeout_rate),
            ("drop", faults.drop_rate),
            ("malformed", faults.malformed_rate),
        ):
            if draw < rate:
                stats[f"fault_{kind}"] += 1
                return await _fault(kind, faults.hang_s, rng)
            draw -= rate

        # Model faults: the HTTP exchange is fine, the reply is not. Each rate is a share of the
        # replies it can spoil, and those are counted too (`answered`, `text_replies`,
        # `tool_call_replies`): a rate of text replies is no rate of all requests. The user's
        # faults (stop early, skip the device actions, withhold the reason for calling) come after
        # `empty`, and a reply they spoil meets no other fault.
        purpose = request.headers.get(PURPOSE_HEADER, "reply")
        reply = script.reply(tag.role, purpose, task, body.get("messages", []), tools_offered=bool(body.get("tools")))
        stats["answered"] += 1
        if rng.random() < faults.empty_rate:
            stats["fault_empty"] += 1
            return await served(request, body, tag, _completion(model, body, Reply(content=""), False))
        if tag.role == "user" and purpose in ("reply", "react") and reply.user_step in SPOILS:
            fault = _user_fault(reply.user_step, faults, rng, stats)
            if fault is not None:
                spoiled = spoiled_user_reply(task, body.get("messages", []), purpose, fault)
                return await served(request, body, tag, _completion(model, body, spoiled, False))
        text_reply = bool(reply.content) and purpose in ("reply", "react")  # not a verify or reflect step
        if text_reply:
            stats["text_replies"] += 1
        if text_reply and rng.random() < faults.unhelpful_rate:
            stats["fault_unhelpful"] += 1
            unhelpful = Reply(content="Sorry, I am not sure what you mean.")
            return await served(request, body, tag, _completion(model, body, unhelpful, False))
        if reply.tool_calls:
            stats["tool_call_replies"] += 1
        bad_arguments = bool(reply.tool_calls) and rng.random() < faults.bad_arguments_rate
        stats["fault_bad_arguments" if bad_arguments else "ok"] += 1
        return await served(request, body, tag, _completion(model, body, reply, bad_arguments))

    async def _fault(kind: str, hang_s: float, rng: random.Random) -> Response:
        if kind == "error":
            return _error(rng.choice((500, 503)), "oracle fault: internal server error")
        if kind == "timeout":
            await asyncio.sleep(hang_s)
            return _error(504, "oracle fault: hung")
        if kind == "drop":
            return _DroppedConnection()
        return Response(content=b'{"id": "chatcmpl-broken", "choices": [', media_type="application/json")

    return app


def _user_fault(step: UserStep, faults: FaultConfig, rng: random.Random, stats: Counter[str]) -> UserFault | None:
    """The user fault that spoils a user's reply at `step` of its script, if one is drawn; the
    reply counts in its share. A rate of 0 draws nothing: the other faults' draws stay as they
    were without user faults."""
    fault = SPOILS[step]
    stats[FAULT_SHARES[fault.value]] += 1  # user_turns_midway, user_device_turns, user_openings
    rate = getattr(faults, f"{fault.value}_rate")
    if rate and rng.random() < rate:
        stats[f"fault_{fault.value}"] += 1
        return fault
    return None


def _settings_json(now: _Behaviour) -> dict[str, Any]:
    """What `GET` and `PUT /oracle/settings` answer: the latency and faults the server applies now."""
    return {"latency_s": now.latency_s, "faults": dataclasses.asdict(now.faults)}


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (its body is read: the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _refused(body: dict[str, Any], model: str) -> JSONResponse | None:
    """What vLLM's OpenAI server refuses, refused the same way (so a setting that a real server
    would reject fails against the oracle too)."""
    if body.get("model") != model:
        return _error(404, f"The model `{body.get('model')}` does not exist.")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0.0 <= temperature <= 2.0):
        return _error(400, f"temperature must be in [0, 2], got {temperature}.")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens >= 1):
        return _error(400, f"max_tokens must be at least 1, got {max_tokens}.")
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "oracle_error", "code": status}}, status)


def _completion(model: str, request: dict[str, Any], reply: Reply, bad_arguments: bool) -> dict[str, Any]:
    """A chat.completion in the standard OpenAI shape; token counts are a chars/4 estimate."""
    tool_calls: list[dict[str, Any]] = [
        {
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {
                "name": call.name,
                # A fault that a real model makes: Python-style, not JSON.
                "arguments": str(call.arguments) + "," if bad_arguments else json.dumps(call.arguments),
            },
        }
        for call in reply.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    prompt_chars = sum(len(str(m.get("content") or "")) for m in request.get("messages", []))
    completion_chars = len(reply.content or "") + sum(len(c["function"]["arguments"]) for c in tool_calls)
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, completion_chars // 4 + 1
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.oracle",
        __doc__,
        reads=f"--settings (server.oracle of the model's config, as JSON); its API key from ${API_KEY_ENV} "
        "(none: no key asked); the benchmark's tasks, for their gold actions (tau2's, or tau-bench v1's for "
        "bench=tau_bench); and in each request, the episode's X-Tau-Exp-* headers (which benchmark, task, "
        "trial and role it is in).",
        docs="docs/serving/index.md (its oracle section)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (written to --port-file)")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port once listening")
    parser.add_argument("--model", default="oracle", help="the model name to serve")
    parser.add_argument(
        "--settings",
        type=settings_from_json,
        default=OracleConfig(),
        help="server.oracle of the model's config (latency_s, capacity, service times, faults), as JSON",
    )
    args = parser.parse_args(argv)
    prepare_process()

    import tau2.run  # noqa: F401  (imported before listening: ready means warm)
    import uvicorn

    app = create_app(args.model, args.settings, os.environ.get(API_KEY_ENV) or None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    if args.port_file:
        write_atomically(args.port_file, str(sock.getsockname()[1]))  # never a partial number
    print(
        f"oracle serving model {args.model!r} at http://{args.host}:{sock.getsockname()[1]}/v1 ({args.settings})",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=75)
    uvicorn.Server(config).run(sockets=[sock])
