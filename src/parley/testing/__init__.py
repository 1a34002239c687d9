"""Fakes parley ships for tests, ours and yours: no network, real code paths.

- `FakeLLMServer`: the OpenAI Chat Completions and Anthropic Messages APIs served over real
  HTTP on 127.0.0.1, so the official SDKs (and parley's adapters) run unchanged against it;
  scripted replies (`FakeReply`, `FakeToolCall`) and faults (`Fault`) per request, recorded
  requests, and validation the way the real APIs validate. Needs ``parley[testing]``.
- `ScriptedModel`: a model adapter that plays scripted replies, errors and hangs, and records
  what it was asked, with no HTTP at all.
- `EchoModel` (from `parley.models`) with `token_delay` for slow, deterministic streaming.
"""

from parley.models.echo import EchoModel
from parley.testing.fake_script import FakeReply, FakeToolCall, Fault
from parley.testing.fake_server import FakeLLMServer, RecordedRequest
from parley.testing.scripted import Reply, ScriptedModel, ScriptItem, UnexpectedModelCall

__all__ = [
    "EchoModel",
    "FakeLLMServer",
    "FakeReply",
    "FakeToolCall",
    "Fault",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "ScriptedModel",
    "UnexpectedModelCall",
]
