"""`FakeLLMServer`: OpenAI- and Anthropic-compatible HTTP on loopback, for tests.

The official SDKs talk to it over real HTTP, so adapters are tested through the same code paths
as in production: request building, SSE parsing, error mapping, timeouts and dropped
connections. Nothing leaves 127.0.0.1.

    async with FakeLLMServer(time_to_first_token=0.05) as server:
        server.script(FakeReply(text="Hi!"), Fault.rate_limit(retry_after=2))
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test")
        ...
        assert server.requests[0].body["model"] == "fake-gpt"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from parley.errors import ConfigError
from parley.testing.fake_script import FakeReply, FakeToolCall, Fault, ScriptItem
from parley.testing.fake_validation import RequestProblem
from parley.testing.fake_wire import (
    AnthropicWire,
    OpenAIWire,
    StreamPlan,
    Wire,
    default_reply_text,
    new_id,
)

try:
    from aiohttp import web

    _aiohttp_missing: ImportError | None = None
except ImportError as exc:  # pragma: no cover - only without the `testing` extra
    _aiohttp_missing = exc

__all__ = ["FakeLLMServer", "FakeReply", "FakeToolCall", "Fault", "RecordedRequest"]

_OPENAI = OpenAIWire()
_ANTHROPIC = AnthropicWire()
_ROUTES = (
    "POST /v1/chat/completions, POST /openai/deployments/{deployment}/chat/completions "
    "(Azure), POST /v1/messages and GET /v1/models"
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it, and the status it answered.

    `headers` has lower-case names. `status` is 0 when no status line was ever sent (a hang,
    or a connection dropped before answering); a stream dropped midway has its 200.
    """

    api: Literal["openai", "anthropic"]
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


class _ServerStopping(Exception):
    """The server is shutting down: cut the response short."""


def _mask(key: str) -> str:
    return f"{key[:3]}***{key[-4:]}" if len(key) > 10 else "***"


class FakeLLMServer:
    """An OpenAI Chat Completions and Anthropic Messages server on 127.0.0.1 and a free port.

    Each chat or messages request that passes authentication and validation takes the next
    scripted item (`script()`), or gets the default reply, which quotes the request's last
    and first user messages and counts them, so every conversation's context shows. Requests
    are validated as the real APIs validate them (400 in the provider's error shape, with its
    wording), a model not in `models` gets 404, and every request is recorded in `requests`.

    `time_to_first_token` is waited before the first token, `1 / tokens_per_second` between
    tokens; a reply that is not streamed waits the same total. `api_key`, if given, is the only
    key accepted; without it any key is, but a request without one still gets 401.
    `record=False` keeps `requests` empty, for long benchmark runs.
    """

    def __init__(
        self,
        *,
        time_to_first_token: float = 0.0,
        tokens_per_second: float | None = None,
        api_key: str | None = None,
        models: Sequence[str] = ("fake-gpt", "fake-claude"),
        record: bool = True,
    ) -> None:
        if _aiohttp_missing is not None:
            raise ConfigError(
                "FakeLLMServer needs aiohttp, which is not installed: pip install 'parley[testing]'"
            ) from _aiohttp_missing
        if time_to_first_token < 0:
            raise ConfigError("time_to_first_token must be >= 0 seconds")
        if tokens_per_second is not None and tokens_per_second <= 0:
            raise ConfigError("tokens_per_second must be > 0, or None for no delay between tokens")
        if isinstance(models, str):
            raise ConfigError("models must be a sequence of model names, not one string")
        self.time_to_first_token = time_to_first_token
        self.tokens_per_second = tokens_per_second
        self.api_key = api_key
        self.models: tuple[str, ...] = tuple(models)
        self.record = record
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptItem] = deque()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping = asyncio.Event()

    # -- the public surface ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, once the server runs."""
        if self._url is None:
            raise RuntimeError(
                "FakeLLMServer is not running: use `async with FakeLLMServer() as server:`"
            )
        return self._url

    @property
    def openai_base_url(self) -> str:
        """What `AsyncOpenAI(base_url=...)` or OPENAI_BASE_URL takes."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What `AsyncAnthropic(base_url=...)` or ANTHROPIC_BASE_URL takes (the SDK adds /v1)."""
        return self.url

    def script(self, *items: FakeReply | Fault) -> None:
        """Queue answers: each valid chat/messages request takes the next one, in order."""
        for item in items:
            if not isinstance(item, FakeReply | Fault):
                raise ConfigError(f"script() takes FakeReply and Fault items, not {item!r}")
        self._script.extend(items)

    @property
    def remaining(self) -> int:
        """How many scripted items no request has used yet."""
        return len(self._script)

    def assert_consumed(self) -> None:
        """Fail when scripted items were left unused: a test expected requests that never came."""
        if self._script:
            raise AssertionError(
                f"{len(self._script)} scripted item(s) were never used: {list(self._script)!r}"
            )

    def clear(self) -> None:
        """Forget the script and the recorded requests."""
        self._script.clear()
        self.requests.clear()

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("this FakeLLMServer is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post(
            "/openai/deployments/{deployment}/chat/completions", self._azure_chat_completions
        )
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        # handler_cancellation: a client that gives up cancels its handler (hangs end cleanly).
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=5.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._stopping.clear()
        self._url = f"http://127.0.0.1:{site.port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner, self._url = self._runner, None, None
        self._stopping.set()  # hangs and streams in progress end now
        if runner is not None:
            await runner.cleanup()

    # -- handlers ----------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._model_call(request, _OPENAI)

    async def _azure_chat_completions(self, request: web.Request) -> web.StreamResponse:
        """Azure OpenAI's shape: the deployment in the path, ``api-version`` in the query."""
        if not request.query.get("api-version"):
            body, _ = await self._read_body(request)
            problem = RequestProblem(400, "Missing required query parameter: api-version")
            return self._refuse(request, _OPENAI, body, problem)
        return await self._model_call(request, _OPENAI)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._model_call(request, _ANTHROPIC)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        wire = self._wire_for(request)
        problem = self._check_auth(request, wire)
        if problem is not None:
            return self._refuse(request, wire, {}, problem)
        self._record(request, wire, {}, 200)
        return self._json(wire, wire.models_body(self.models))

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        wire = self._wire_for(request)
        body, _ = await self._read_body(request)
        problem = RequestProblem(
            404,
            f"Invalid URL ({request.method} {request.path}): FakeLLMServer serves {_ROUTES}. "
            "Check the base URL: the OpenAI SDK wants server.openai_base_url (ending in /v1), "
            "the Anthropic SDK server.anthropic_base_url (no /v1).",
        )
        return self._refuse(request, wire, body, problem)

    async def _model_call(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        body, parse_problem = await self._read_body(request)
        problem = self._check_auth(request, wire) or parse_problem
        if (
            problem is None
            and wire.api == "anthropic"
            and "anthropic-version" not in request.headers
        ):
            problem = RequestProblem(400, "anthropic-version: header is required")
        problem = problem or wire.validate(body)
        if problem is None and body["model"] not in self.models:
            problem = self._unknown_model(wire, body["model"])
        if problem is not None:
            return self._refuse(request, wire, body, problem)

        item = self._script.popleft() if self._script else None
        everything, said = wire.texts(body)
        prompt_words = sum(len(text.split()) for text in everything)
        reply = item if isinstance(item, FakeReply) else FakeReply(text=default_reply_text(said))
        model: str = body["model"]
        stream = body.get("stream") is True
        if isinstance(item, Fault):
            return await self._fault(request, wire, body, item, reply, prompt_words)
        plan = wire.stream_plan(reply, model, prompt_words, body)
        self._record(request, wire, body, 200)
        if stream:
            return await self._stream(request, wire, plan, len(plan.tokens), ending="finish")
        try:
            await self._pause(self._total_delay(len(plan.tokens)))
        except _ServerStopping:
            return self._drop(request)
        return self._json(wire, wire.reply_body(reply, model, prompt_words))

    async def _fault(
        self,
        request: web.Request,
        wire: Wire,
        body: dict[str, Any],
        fault: Fault,
        reply: FakeReply,
        prompt_words: int,
    ) -> web.StreamResponse:
        stream = body.get("stream") is True
        if fault.kind in ("rate_limit", "server_error", "unauthorized"):
            status = fault.status or 500
            self._record(request, wire, body, status)
            headers: dict[str, str] = {}
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            return self._json(wire, wire.fault_body(fault, body["model"]), status, headers)
        if fault.kind == "hang" or (fault.kind == "stall_mid_stream" and not stream):
            self._record(request, wire, body, 0)
            await self._stopping.wait()  # or cancelled, when the client disconnects
            return self._drop(request)
        plan = wire.stream_plan(reply, body["model"], prompt_words, body)
        if fault.kind == "drop_mid_stream":
            if not stream:
                self._record(request, wire, body, 0)
                return self._drop(request)
            self._record(request, wire, body, 200)
            return await self._stream(request, wire, plan, fault.after_tokens, ending="drop")
        if fault.kind == "stall_mid_stream":
            self._record(request, wire, body, 200)
            return await self._stream(request, wire, plan, fault.after_tokens, ending="stall")
        # malformed_chunk
        self._record(request, wire, body, 200)
        if not stream:
            return web.Response(
                status=200, text='{"id": "truncated', content_type="application/json"
            )
        return await self._stream(request, wire, plan, fault.after_tokens, ending="malformed")

    # -- streaming and timing ----------------------------------------------------------------

    async def _stream(
        self,
        request: web.Request,
        wire: Wire,
        plan: StreamPlan,
        count: int,
        *,
        ending: Literal["finish", "drop", "stall", "malformed"],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                wire.request_id_header: new_id("req_"),
            },
        )
        await response.prepare(request)
        tokens = plan.tokens[:count]
        try:
            if plan.head:
                await response.write(plan.head)
            for n, frame in enumerate(tokens):
                await self._pause(self._token_delay(n))
                await response.write(frame)
            if ending == "drop":
                self._drop(request)
                return response
            if ending == "stall":  # until the client goes away or the server stops
                await self._stopping.wait()
                raise _ServerStopping
            if not tokens:
                await self._pause(self._token_delay(0))
            await response.write(plan.tail if ending == "finish" else plan.malformed)
            await response.write_eof()
        except _ServerStopping:
            self._drop(request)
        except ConnectionResetError:
            pass  # the client went away; aiohttp notes it and closes the connection
        return response

    def _token_delay(self, n: int) -> float:
        if n == 0:
            return self.time_to_first_token
        return 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0

    def _total_delay(self, tokens: int) -> float:
        return sum(self._token_delay(n) for n in range(max(tokens, 1)))

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()
        if self._stopping.is_set():
            raise _ServerStopping

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without finishing the response (aiohttp then skips it)."""
        if request.transport is not None:
            request.transport.close()
        return web.StreamResponse()

    @staticmethod
    def _wire_for(request: web.Request) -> Wire:
        anthropic = "anthropic-version" in request.headers or "x-api-key" in request.headers
        return _ANTHROPIC if anthropic else _OPENAI

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[dict[str, Any], RequestProblem | None]:
        raw = await request.read()
        if not raw and request.method == "GET":
            return {}, None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return {}, RequestProblem(
                400,
                "We could not parse the JSON body of your request: the API expects a JSON object.",
            )
        return body, None

    def _check_auth(self, request: web.Request, wire: Wire) -> RequestProblem | None:
        authorization = request.headers.get("Authorization", "")
        bearer = authorization[7:] if authorization[:7].lower() == "bearer " else None
        if wire.api == "anthropic":
            # The anthropic 2.x SDK sends `api_key` as a Bearer token; x-api-key is the classic.
            key = request.headers.get("x-api-key") or bearer
            if not key:
                return RequestProblem(401, "x-api-key header is required")
            if self.api_key is not None and key != self.api_key:
                return RequestProblem(401, "invalid x-api-key")
            return None
        bearer = bearer or request.headers.get("api-key")  # Azure OpenAI's header
        if not bearer:
            return RequestProblem(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if self.api_key is not None and bearer != self.api_key:
            return RequestProblem(
                401, f"Incorrect API key provided: {_mask(bearer)}.", code="invalid_api_key"
            )
        return None

    def _unknown_model(self, wire: Wire, model: str) -> RequestProblem:
        if wire.api == "anthropic":
            return RequestProblem(404, f"model: {model}")
        return RequestProblem(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def _refuse(
        self, request: web.Request, wire: Wire, body: dict[str, Any], problem: RequestProblem
    ) -> web.StreamResponse:
        self._record(request, wire, body, problem.status)
        error = wire.error_body(
            problem.status, problem.message, param=problem.param, code=problem.code
        )
        return self._json(wire, error, problem.status)

    @staticmethod
    def _json(
        wire: Wire, data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        headers = {wire.request_id_header: new_id("req_"), **(headers or {})}
        return web.json_response(data, status=status, headers=headers)

    def _record(self, request: web.Request, wire: Wire, body: dict[str, Any], status: int) -> None:
        if not self.record:
            return
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(RecordedRequest(wire.api, request.path, headers, body, status))
