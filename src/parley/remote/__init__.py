"""parley's own client of a remote `parley serve`: `Client(url="tcp://host:port")`."""

from parley.remote.client import RemoteClient
from parley.remote.session import RemoteSession

__all__ = ["RemoteClient", "RemoteSession"]
