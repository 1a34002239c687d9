"""`parley serve`: the Copilot runtime protocol over parley, for the official Copilot SDKs.

`CopilotServer` answers the protocol's methods over a `Client`; `serve_stdio` and `serve_tcp`
carry its frames. See docs/copilot-sdk.md.
"""

from parley.server.copilot import PROTOCOL_VERSION, CopilotServer
from parley.server.framing import MAX_FRAME_BYTES
from parley.server.transport import serve_stdio, serve_tcp

__all__ = ["MAX_FRAME_BYTES", "PROTOCOL_VERSION", "CopilotServer", "serve_stdio", "serve_tcp"]
