"""`parley`: the command line over the same runtime and store as the library."""

from parley.cli import chat as _chat  # registers `parley chat`
from parley.cli import compare as _compare  # registers `parley compare ...`
from parley.cli import serve as _serve  # registers `parley serve`
from parley.cli import sessions as _sessions  # registers `parley sessions ...`
from parley.cli.app import app, main

__all__ = ["app", "main"]

del _chat, _compare, _serve, _sessions
