"""Shared fixtures. Every store here is real: SQLite files live in pytest's tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley import Client, ClientConfig
from parley.models import EchoModel, ModelAdapter
from parley.testing import ScriptedModel


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store kind in turn: tests using it run once per store."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path / 'parley.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parley.db'}"


@pytest.fixture
def scripted() -> ScriptedModel:
    """A scripted model, served as provider "scripted" by the `client` fixture."""
    return ScriptedModel()


@pytest.fixture
async def client(store_url: str, scripted: ScriptedModel) -> AsyncIterator[Client]:
    """A running client on each store kind, with `scripted:*` and a slow `slow:*` echo model."""
    providers: dict[str, ModelAdapter] = {
        "scripted": scripted,
        "slow": EchoModel(token_delay=0.02, provider="slow"),
    }
    async with Client(store=store_url, config=ClientConfig(providers=providers)) as c:
        yield c
