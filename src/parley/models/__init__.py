"""Model adapters (one per wire API) and the registry that routes model strings to them."""

from parley.models.base import (
    FinishReason,
    ModelAdapter,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
)
from parley.models.echo import EchoModel
from parley.models.registry import ModelRegistry, ResolvedModel

__all__ = [
    "EchoModel",
    "FinishReason",
    "ModelAdapter",
    "ModelRegistry",
    "ModelRequest",
    "ResolvedModel",
    "StreamEvent",
    "StreamFinish",
    "StreamTextDelta",
    "StreamToolCall",
    "StreamUsage",
]
