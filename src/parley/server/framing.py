"""`Content-Length` framing (the LSP's, which the Copilot runtime protocol uses), written once.

A frame is ``Content-Length: N\\r\\n\\r\\n`` and N bytes of UTF-8 JSON. It reads from any
`asyncio.StreamReader` and writes bytes, so stdio and TCP share it. Frames we write carry only
that one header: the Copilot SDKs' readers accept nothing else. Frames we read may carry more
headers (``Content-Type``), which are ignored.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "MAX_FRAME_BYTES",
    "FrameError",
    "FrameTooLargeError",
    "encode_frame",
    "read_frame",
]

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""The largest frame body read (16 MiB); a larger one is skipped and answered with an error."""

_MAX_HEADER_LINES = 16
_SKIP_CHUNK = 1 << 16


class FrameError(Exception):
    """The byte stream is not framed: there is no telling where the next message starts, so
    the connection has to end."""


class FrameTooLargeError(Exception):
    """A frame's body was larger than the limit; it was read and thrown away, and the stream
    is still in step."""

    def __init__(self, size: int, limit: int, head: bytes = b"") -> None:
        super().__init__(
            f"a frame of {size} bytes is over the limit of {limit} bytes; "
            "send smaller messages (a long prompt belongs in several turns or an attachment)"
        )
        self.size = size
        self.limit = limit
        self.head = head
        """The body's first bytes, where a request's id usually is, so the error can answer it."""


def encode_frame(body: bytes) -> bytes:
    """One frame: the single header the Copilot SDKs read, then the body."""
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)


async def _header_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise FrameError("a header line is too long; this is not Content-Length framing") from exc
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise FrameError("the stream ended inside a frame header") from exc
        raise EOFError from exc


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME_BYTES) -> bytes | None:
    """The next frame's body; None at a clean end of stream.

    Raises FrameError when the stream cannot be read as frames any more, and
    FrameTooLargeError (after skipping the body) when one frame is over `limit` bytes.
    """
    length: int | None = None
    headers = 0
    for _ in range(_MAX_HEADER_LINES):
        try:
            line = await _header_line(reader)
        except EOFError:
            if not headers:
                return None
            raise FrameError("the stream ended inside a frame header") from None
        line = line.rstrip(b"\r\n")
        if not line:
            if not headers:
                continue  # blank lines between frames are harmless
            break
        headers += 1
        name, sep, value = line.partition(b":")
        if not sep:
            raise FrameError(f"expected a 'Content-Length: N' header, got {line[:80]!r}")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise FrameError(f"Content-Length is not a number: {value[:40]!r}") from None
            if length < 0:
                raise FrameError(f"Content-Length is negative: {length}")
    else:
        raise FrameError(f"more than {_MAX_HEADER_LINES} header lines in one frame")
    if length is None:
        raise FrameError("a frame without a Content-Length header")
    try:
        if length > limit:
            head = await reader.readexactly(min(length, _SKIP_CHUNK))
            left = length - len(head)
            while left:
                left -= len(await reader.readexactly(min(left, _SKIP_CHUNK)))
            raise FrameTooLargeError(length, limit, head[:1024])
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(
            f"the stream ended {length - len(exc.partial)} bytes short of a frame"
        ) from exc
