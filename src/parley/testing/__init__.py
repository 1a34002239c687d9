"""Fakes parley ships for tests, ours and yours: no network, real code paths.

- `ScriptedModel`: a model adapter that plays scripted replies, errors and hangs, and records
  what it was asked.
- `EchoModel` (from `parley.models`) with `token_delay` for slow, deterministic streaming.
"""

from parley.models.echo import EchoModel
from parley.testing.scripted import Reply, ScriptedModel, ScriptItem, UnexpectedModelCall

__all__ = ["EchoModel", "Reply", "ScriptItem", "ScriptedModel", "UnexpectedModelCall"]
