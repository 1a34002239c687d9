"""`parley serve` (and the `parley-runtime` script): a Copilot runtime the official SDKs can drive.

The SDKs start their runtime as ``<path> --headless --no-auto-update --log-level info --stdio``
(or with ``--port N`` and no ``--stdio``); those flags are accepted, and any other flag they may
add is logged and ignored, so `COPILOT_CLI_PATH` can point at ``parley-runtime``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer

from parley.cli.app import State, app, err, run
from parley.client import Client
from parley.config import ClientConfig
from parley.server.copilot import CopilotServer
from parley.server.transport import protect_stdout, serve_stdio, serve_tcp

__all__ = ["runtime_main", "serve"]

_LEVELS = {
    "none": logging.CRITICAL + 10,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "all": logging.DEBUG,
}
DEFAULT_IDLE_TTL = 600.0


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(
    ctx: typer.Context,
    stdio: Annotated[
        bool, typer.Option("--stdio", help="Serve one client over standard input and output.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Listen on this TCP port (0: any free one); the default."),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; beyond loopback a token is required."),
    ] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            "--connection-token",
            envvar="COPILOT_CONNECTION_TOKEN",
            help="TCP clients must send this token in `connect`.",
            show_envvar=True,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="PARLEY_STORE", help="Store URL (as `parley --store`)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("-m", "--model", help="Model of sessions created without one."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="none, error, warning, info, debug or all.")
    ] = "warning",
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--session-idle-timeout",
            help="Seconds before an idle session is released from memory (its data stays).",
        ),
    ] = None,
    headless: Annotated[bool, typer.Option("--headless", hidden=True)] = True,
    no_auto_update: Annotated[bool, typer.Option("--no-auto-update", hidden=True)] = True,
) -> None:
    """Serve the Copilot runtime protocol, so the official Copilot SDKs drive parley sessions.

    With --stdio, one client speaks over standard input and output (nothing else is ever
    written to stdout; logs go to stderr). Otherwise parley listens on TCP, 127.0.0.1 unless
    --host says otherwise, and prints `listening on port N`. See docs/copilot-sdk.md.
    """
    del headless, no_auto_update  # the SDKs pass them; parley has no UI and no updater
    logging.basicConfig(
        stream=sys.stderr,
        level=_LEVELS.get(log_level.lower(), logging.WARNING),
        format="parley serve: %(levelname)s %(message)s",
    )
    if ctx.args:
        logging.getLogger("parley.server").info("ignoring flags: %s", " ".join(ctx.args))
    if stdio and port is not None:
        err.print("[red]error:[/red] choose --stdio or --port, not both", highlight=False)
        raise typer.Exit(2)
    frames = protect_stdout() if stdio else None
    ttl = idle_timeout if idle_timeout and idle_timeout > 0 else DEFAULT_IDLE_TTL

    def make_client() -> Client:
        config = ClientConfig(default_model=model)
        return Client(store=store or State.store, config=config, idle_ttl=ttl)

    async def work(client: Client) -> None:
        server = CopilotServer(client, token=token or None)
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):  # the Node SDK ends us with SIGTERM
            loop.add_signal_handler(stop_signal, server.shutdown.set)
        if frames is not None:
            await serve_stdio(server, stdout_fd=frames)
        else:
            await serve_tcp(server, host=host, port=port or 0, on_listening=_announce)

    try:
        run(work, make_client=make_client)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _announce(port: int) -> None:
    # The SDKs wait for this exact line on stdout (`RuntimeConnection.for_tcp`).
    sys.stdout.write(f"listening on port {port}\n")
    sys.stdout.flush()


def runtime_main() -> None:
    """The `parley-runtime` console script: `parley serve` with the SDK's arguments."""
    app(args=["serve", *sys.argv[1:]], prog_name="parley-runtime")
