"""One client connection to the server: its JSON-RPC peer and what it has asked for."""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.server.rpc import Peer

__all__ = ["Connection"]


@dataclass(eq=False)
class Connection:
    peer: Peer
    name: str
    authenticated: bool
    """False until `connect` carries the right token, when the server has one."""
    trusted: bool = False
    """The process that started the server, over stdio: no token is asked of it."""
    sessions: set[str] = field(default_factory=set)
    """The sessions this connection created or resumed, whose events it gets."""
    all_events: bool = False
    """Set by ``parley.subscribe``: every session's events, not only its own."""
