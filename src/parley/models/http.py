"""The lean wire path both provider adapters stand on: aiohttp, orjson and a small SSE decoder.

A model call is one POST whose reply is a server-sent event stream. The official SDKs build a
typed object for every streamed chunk and transform every history message on every request;
here a chunk is one `orjson.loads` into plain dicts, and the request body is bytes the adapter
mostly kept from the session's previous request (`models/wire_body.py`).

What the SDKs did for their users is kept: base URLs, extra headers, proxies from the
environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, read once when the adapter is
built), a timeout on connecting and on every read, `Retry-After` on error replies, and every
failure turned into parley's typed `ProviderError` tree. Retrying is the runtime's business
(`runtime/retry.py`), never the transport's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from parley import __version__
from parley.config import ProviderConfig
from parley.errors import (
    ConfigError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from parley.models.base import (
    FinishReason,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamToolCall,
)
from parley.models.faults import (
    broken_stream,
    from_status,
    parse_tool_arguments,
    safe_url,
    status_of_error,
)
from parley.models.pricing import load_prices, price

__all__ = ["HTTPAdapter", "SSEDecoder", "error_detail", "error_message"]

log = logging.getLogger("parley")

CONNECTIONS = 1000
"""Open connections per provider at most (the official SDKs' default too): enough for a
thousand turns in flight at once, and no more sockets than a process can spare."""


class SSEDecoder:
    """Server-sent events from the bytes of a stream, as ``(event, data)`` pairs of bytes.

    Fed chunks as they arrive, in any split; `feed` returns the events completed by that chunk.
    Comments, ``id:`` and ``retry:`` lines are skipped; ``data:`` lines of one event are joined
    with newlines, as the SSE specification says; lines may end in CRLF.

    The bytes are cut at blank lines into whole events first. An event that is one ``data: ``
    line, as nearly every event of both APIs is, is then taken in one slice; anything else is
    read line by line.
    """

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""
        """The bytes after the last blank line: an event still arriving."""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buffer = self._rest + chunk if self._rest else chunk
        if b"\r" in buffer:  # a CR that ends the buffer stays in _rest until its LF comes
            buffer = buffer.replace(b"\r\n", b"\n")
        blocks = buffer.split(b"\n\n")
        self._rest = blocks.pop()
        events: list[tuple[bytes, bytes]] = []
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                events.append((b"", block[6:]))
            elif block:
                _parse(block, events)
        return events

    def close(self) -> list[tuple[bytes, bytes]]:
        """The last event, when the stream ended without the blank line that completes it."""
        rest, self._rest = self._rest, b""
        events: list[tuple[bytes, bytes]] = []
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            _parse(rest, events)
        return events


def _parse(block: bytes, events: list[tuple[bytes, bytes]]) -> None:
    """One event's lines (no blank line among them), read by the SSE specification's rules."""
    event = b""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line[:5] == b"data:":
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line[:6] == b"event:":
            event = line[6:].strip()
    if data:
        events.append((event, b"\n".join(data)))


class _ReadTimer:
    """The wait for each next chunk of a stream, `limit` seconds at most: one timer.

    The reader sets `last` (by `now()`) as each chunk comes; the timer looks at it only when it
    goes off, and is set again from there while chunks still come. When one does not, the
    response's stream fails with aiohttp's read timeout, as aiohttp's own would.
    """

    __slots__ = ("_handle", "_limit", "_loop", "_response", "last", "now")

    def __init__(self, response: aiohttp.ClientResponse, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._response = response
        self._limit = limit
        self.now = self._loop.time
        self.last = self.now()
        self._handle = self._loop.call_at(self.last + limit, self._check)

    def _check(self) -> None:
        if self.now() - self.last < self._limit:
            self._handle = self._loop.call_at(self.last + self._limit, self._check)
            return
        self._response.content.set_exception(
            aiohttp.ServerTimeoutError(f"no data from the server for {self._limit:g}s")
        )

    def cancel(self) -> None:
        self._handle.cancel()


def error_message(decoded: Any) -> str | None:
    """The message of an error body or chunk: ``error.message`` in both APIs, or ``error`` as
    text; None when it has neither."""
    error = decoded.get("error") if isinstance(decoded, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) else None


def error_detail(body: bytes) -> str:
    """What an error reply says: its `error_message`, else its text, shortened."""
    try:
        message = error_message(orjson.loads(body))
    except orjson.JSONDecodeError:
        message = None
    if message is not None:
        return message
    return body.decode(errors="replace").strip()[:300] or "(no body)"


class HTTPAdapter:
    """Base of the two wire adapters: one aiohttp session (one connection pool) per provider.

    The session is made on first use, in the event loop that uses it, and made again if a
    client is started anew in another loop.
    """

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        base_url: str,
        priced_by: str,
        headers: Mapping[str, str],
    ) -> None:
        self._name = name
        self._type = config.type
        self._base = _checked_url(name, base_url)
        self._price_url = base_url if priced_by == "url" else None
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "User-Agent": f"parley/{__version__}",
            **headers,
            **config.headers,  # the user's own headers win, as they did with the SDKs
        }
        if self._base.user is not None:  # user:password@ in the URL: HTTP Basic auth, unless
            if not any(h.lower() == "authorization" for h in self._headers):  # a key is sent
                pair = f"{self._base.user}:{self._base.password or ''}".encode()
                self._headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            self._base = self._base.with_user(None)
        # The wait for the reply to start is one asyncio.timeout (`_post`), and the wait for
        # each next chunk one `_ReadTimer` a stream: aiohttp's own sock_read timer is moved
        # (cancelled and made anew) on every packet, which cost about 12 us a turn.
        self._wait = config.timeout
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.timeout)
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        with contextlib.suppress(LookupError):  # LookupError: no proxy for this URL
            self._proxy, self._proxy_auth = get_env_proxy_for_url(self._base)
        self._http: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._priced: dict[str, bool] = {}
        load_prices()

    @property
    def provider(self) -> str:
        return self._name

    @property
    def offline(self) -> bool:
        return False

    def stream_batches(self, request: ModelRequest) -> AsyncGenerator[list[StreamEvent], None]:
        """The stream's events, in one list for each read from the network."""
        raise NotImplementedError

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        batches = self.stream_batches(request)
        try:
            async for batch in batches:
                for item in batch:
                    yield item
        finally:
            await batches.aclose()

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop or self._http.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ttl_dns_cache=300)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("Accept-Encoding",),  # streamed tokens are not worth zipping
            )
            self._loop = loop
        return self._http

    async def _post(self, url: URL, body: bytes) -> aiohttp.ClientResponse:
        """POST `body`; the open response of a 2xx, else the typed error for what came back."""
        try:
            async with asyncio.timeout(self._wait):  # connecting, sending, the status line
                response = await self._session().post(
                    url,
                    data=body,
                    headers=self._headers,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                )
        except TimeoutError as exc:
            raise ProviderTimeoutError(
                f"provider {self._name!r} did not answer in time; raise its timeout= if it is "
                "slow, or check that the endpoint is up",
                provider=self._name,
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailableError(
                f"cannot reach provider {self._name!r} at {safe_url(self._base)} "
                f"({type(exc).__name__}); check base_url and that the server is running",
                provider=self._name,
            ) from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s: %d", safe_url(url), response.status)
        if response.status >= 400:
            raise await self._refused(response)
        # Some compatible servers label their event streams oddly; a JSON or HTML page is
        # never one (a server that ignored stream=true, or a proxy's page).
        if response.content_type in ("application/json", "text/html"):
            detail = error_detail(await self._read(response))
            raise ProviderResponseError(
                f"provider {self._name!r} answered {response.status} with "
                f"{response.content_type or 'no content type'}, not an event stream "
                f"({detail[:120]!r}); check that base_url points at the provider's API",
                provider=self._name,
            )
        return response

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            async with asyncio.timeout(self._wait):
                return await response.read()
        except (aiohttp.ClientError, TimeoutError):
            return b""
        finally:
            response.release()

    async def _refused(self, response: aiohttp.ClientResponse) -> ProviderError:
        detail = error_detail(await self._read(response))
        return from_status(self._name, response.status, detail, response.headers)

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncIterator[list[Any]]:
        """The stream's events, chunk by chunk: each chunk's list of decoded ``data`` JSON.

        ``event: error`` and a ``data`` object holding ``error`` become the typed error it
        names; ``[DONE]`` ends the stream. A stream that breaks off, stalls or cannot be parsed
        raises what `broken_stream` makes of it. The response is released at the end (its
        connection goes back to the pool) and closed if the stream is left early.
        """
        decoder = SSEDecoder()
        done = False
        timer = _ReadTimer(response, self._wait)
        try:
            async for chunk in response.content.iter_any():
                timer.last = timer.now()
                batch: list[Any] = []
                failure: Exception | None = None
                try:
                    for event, data in decoder.feed(chunk):
                        if data == b"[DONE]":
                            done = True
                            break
                        decoded = orjson.loads(data)
                        if event == b"error" or (
                            isinstance(decoded, dict) and decoded.get("error")
                        ):
                            raise self._stream_error(decoded)
                        batch.append(decoded)
                except Exception as exc:  # what came before it in the chunk is passed on first
                    failure = exc
                if batch:
                    yield batch
                if failure is not None:
                    raise failure
                if done:
                    break
            else:
                tail = [orjson.loads(d) for _, d in decoder.close() if d != b"[DONE]"]
                if tail:
                    yield tail
        except ProviderError:
            response.close()
            raise
        except Exception as exc:  # torn, stalled or malformed mid-stream, whatever raised it
            response.close()
            raise broken_stream(self._name, exc) from exc
        except BaseException:  # closed early (an abort) or cancelled: drop the connection
            response.close()
            raise
        finally:
            timer.cancel()
        if done and not response.content.at_eof():
            await self._drain(response)
        response.release()

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        """Read what follows ``[DONE]`` so that the connection can be used again."""
        try:
            async with asyncio.timeout(self._wait):
                await response.content.read()
        except (aiohttp.ClientError, TimeoutError):
            response.close()

    def _finished(self, finish: FinishReason | None) -> FinishReason:
        """The stream's finish reason; ProviderResponseError when it never said it finished."""
        if finish is None:
            raise ProviderResponseError(
                f"the reply stream from provider {self._name!r} ended before the reply was "
                "complete; the partial reply is kept, marked interrupted: send again",
                provider=self._name,
            )
        return finish

    def _ending(self, finish: FinishReason, calls: dict[int, list[str]]) -> list[StreamEvent]:
        """What closes a stream: its tool calls (``index: [id, name, JSON arguments]``, in
        index order), then its finish."""
        ending: list[StreamEvent] = [
            StreamToolCall(
                call_id=call_id,
                name=name,
                arguments=parse_tool_arguments(self._name, name, raw),
            )
            for _, (call_id, name, raw) in sorted(calls.items())
        ]
        ending.append(StreamFinish(reason=finish))
        return ending

    def _stream_error(self, body: Any) -> ProviderError:
        """An error sent inside a stream whose status was 200: by its type, as a status."""
        detail = error_message(body)
        if detail is None:
            detail = orjson.dumps(body).decode()[:300]
        error = body.get("error") if isinstance(body, dict) else None
        return from_status(self._name, status_of_error(error), detail, {})

    def _price(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        if self._priced.get(model) is False:  # looked up once: the model has no known price
            return None
        cost = price(
            self._type,
            model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
            api_url=self._price_url,
        )
        self._priced[model] = cost is not None
        return cost

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def _checked_url(name: str, base_url: str) -> URL:
    """`base_url` parsed, or ConfigError saying what is wrong with it."""
    try:
        url = URL(base_url)
        host = url.host
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"provider {name!r} cannot be set up: its base_url {base_url!r} is not a URL "
            f"({exc}); check its base_url, key and type"
        ) from None
    if url.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"provider {name!r} cannot be set up: its base_url {safe_url(base_url)!r} must be "
            "an http:// or https:// URL with a host; check its base_url, key and type"
        )
    return url
