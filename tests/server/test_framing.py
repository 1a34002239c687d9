"""Content-Length framing: what is read, what is refused, and what keeps the stream in step."""

from __future__ import annotations

import asyncio

import pytest

from parley.server.framing import FrameError, FrameTooLargeError, encode_frame, read_frame


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip_and_end_cleanly() -> None:
    bodies = [b'{"a":1}', '{"t":"h\u00e9llo \u2603"}'.encode(), b"{}"]
    reader = _reader(b"".join(encode_frame(body) for body in bodies))
    assert [await read_frame(reader) for _ in bodies] == bodies
    assert await read_frame(reader) is None


def test_written_frames_carry_one_header_only() -> None:
    """The Copilot SDKs read exactly one `Content-Length` line, then one blank line."""
    body = '{"x":"\u00e9"}'.encode()
    assert encode_frame(body) == b"Content-Length: %d\r\n\r\n" % len(body) + body


async def test_other_headers_and_blank_lines_are_tolerated() -> None:
    reader = _reader(
        b"\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
        b"content-length: 2\r\n\r\n{}"
    )
    assert await read_frame(reader) == b"{}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello there\r\n\r\n{}", "Content-Length"),
        (b"Content-Type: x\r\n\r\n{}", "without a Content-Length"),
        (b"Content-Length: ten\r\n\r\n{}", "not a number"),
        (b"Content-Length: -4\r\n\r\n{}", "negative"),
        (b"Content-Length: 10\r\n\r\n{}", "short of a frame"),
        (b"Content-Length: 10\r\n", "ended inside a frame header"),
    ],
)
async def test_unframed_input_is_a_frame_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        await read_frame(_reader(data))


async def test_an_oversized_frame_is_skipped_and_the_next_one_read() -> None:
    big = b"x" * 5000
    reader = _reader(encode_frame(big) + encode_frame(b'{"ok":true}'))
    with pytest.raises(FrameTooLargeError, match="over the limit of 1000 bytes") as info:
        await read_frame(reader, limit=1000)
    assert info.value.size == 5000
    assert await read_frame(reader, limit=1000) == b'{"ok":true}'


async def test_a_header_line_without_end_is_a_frame_error() -> None:
    reader = asyncio.StreamReader(limit=1024)
    reader.feed_data(b"C" * 5000)
    with pytest.raises(FrameError, match="too long"):
        await read_frame(reader)
