"""The official Node Copilot SDK (`@github/copilot-sdk` 1.0.14, protocol v3) drives
`parley-runtime`: the seed scenario in `node/seed.mjs`, checked here from its JSON output.

`npm ci` installs the pinned SDK into `node/node_modules` when it is missing or older than
`package.json`/`package-lock.json` (a stamp file records the last install). It omits optional
dependencies, so the SDK's own bundled runtime (`@github/copilot-sdk-<platform>`) is never on
disk: the only runtime the SDK can start is the parley-runtime path given to it. node and npm
are required, not optional: scripts/test installs them, and without them this test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parley import Client

NODE_DIR = Path(__file__).with_name("node")
RUNTIME = Path(sys.executable).with_name("parley-runtime")
STAMP = NODE_DIR / "node_modules" / ".parley-npm-ci-stamp"
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--omit=optional", "--ignore-scripts"]
NPM_TIMEOUT = 480  # seconds: a cold install downloads the SDK from the npm registry
SEED_TIMEOUT = 90  # seconds: the scenario itself takes about one

# Above the suite's 120 s: a cold `npm ci` alone may take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(NPM_TIMEOUT + SEED_TIMEOUT + 60)]


def _node_supported(version: str) -> bool:
    """Whether `node --version` meets the SDK's `engines`: ^20.19.0 || >=22.12.0."""
    match = re.match(r"v(\d+)\.(\d+)\.", version)
    if match is None:
        return False
    major, minor = int(match.group(1)), int(match.group(2))
    return (major == 20 and minor >= 19) or (major, minor) >= (22, 12)


def _require_node() -> None:
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found on PATH: the Node SDK test needs node and npm "
            "(scripts/test installs them: apt-get install nodejs npm)",
            pytrace=False,
        )
    version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    if not _node_supported(version):
        pytest.fail(
            f"node {version} is too old for @github/copilot-sdk 1.0.14, which needs "
            "^20.19.0 || >=22.12.0: install a newer Node.js",
            pytrace=False,
        )


def _install_sdk() -> None:
    """`npm ci` unless node_modules was installed from the current package files."""
    newest = max(
        (NODE_DIR / name).stat().st_mtime for name in ("package.json", "package-lock.json")
    )
    if STAMP.exists() and STAMP.stat().st_mtime >= newest:
        return
    done = subprocess.run(
        NPM_CI, cwd=NODE_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(NPM_CI)} failed:\n{done.stdout}\n{done.stderr}"
    STAMP.touch()


async def _stored(store_url: str) -> dict[str, tuple[str, int]]:
    """What the store holds once the runtime is gone: session id -> (model, message count)."""
    async with Client(store=store_url) as client:
        page = await client.list_sessions()
        return {info.session_id: (info.model, info.message_count) for info in page}


def test_node_sdk_seed_scenario(tmp_path: Path) -> None:
    assert RUNTIME.exists(), f"{RUNTIME} is missing: pip install -e . makes it"
    sqlite_url = f"sqlite:///{tmp_path / 'parley.db'}"
    _require_node()
    _install_sdk()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COPILOT_") and not key.startswith("PARLEY_")
    }
    done = subprocess.run(
        ["node", "seed.mjs", str(RUNTIME), sqlite_url],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"node seed.mjs failed:\n{done.stdout}\n{done.stderr}"
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    # The SDK started parley-runtime itself, by the path it was given, and stopped cleanly.
    assert out["runtimeSpawned"] == str(RUNTIME)
    assert out["stopErrors"] == []
    exit_status = out["runtimeExit"]
    # stop() sends runtime.shutdown, then SIGTERMs a child that has not exited yet.
    assert exit_status["code"] == 0 or exit_status["signal"] == "SIGTERM", exit_status

    sessions: dict[str, dict[str, Any]] = out["sessions"]
    assert set(sessions) == {"first", "second", "chat"}
    assert sessions["chat"]["sessionId"] == "user-123-chat"
    ids = {key: s["sessionId"] for key, s in sessions.items()}
    assert len(set(ids.values())) == 3
    openings = {key: s["opening"] for key, s in sessions.items()}
    for key, s in sessions.items():
        label = f"[offline echo · {s['model']}]"
        opening, follow_up = s["openingReply"], s["followUpReply"]
        assert opening is not None, s  # sendAndWait returned no assistant.message
        assert follow_up is not None, s
        assert opening["type"] == "assistant.message"
        assert opening["content"] == (
            f'{label} You said "{s["opening"]}". This is the first message of our conversation.'
        )
        # The same follow-up in every session; each answers from its own history only.
        assert follow_up["type"] == "assistant.message"
        assert follow_up["content"] == (
            f'{label} You said "{s["followUp"]}". Earlier in this conversation you said '
            f'"{s["opening"]}"; this is your message #2 here.'
        )
        for other, text in openings.items():
            if other != key:
                assert text not in follow_up["content"]

    assert sorted(out["listedBefore"]) == sorted(ids.values())
    assert sorted(out["listedAfter"]) == sorted([ids["first"], ids["second"]])

    # The store keeps what the SDK saw: two sessions, two turns each, the deleted one gone.
    stored = asyncio.run(_stored(sqlite_url))
    assert stored == {
        ids["first"]: ("echo:alpha", 4),
        ids["second"]: ("echo:alpha", 4),
    }
