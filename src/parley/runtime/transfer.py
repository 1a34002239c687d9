"""Sessions as portable JSON: export one, import it into any store, unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parley.config import validate_session_id
from parley.errors import ConfigError
from parley.info import SessionInfo
from parley.messages import Message, Usage, message_from_dict, message_to_dict
from parley.stores.base import Store

__all__ = ["FORMAT", "export_session", "import_session"]

FORMAT = "parley.session/1"


async def export_session(store: Store, session_id: str) -> dict[str, Any]:
    """The session's settings and whole history as plain JSON data."""
    info = await store.get_session(session_id)
    history = await store.read_messages(session_id)
    return {
        "format": FORMAT,
        "session_id": info.session_id,
        "model": info.model,
        "title": info.title,
        "system_message": info.system_message,
        "metadata": dict(info.metadata),
        "on_busy": info.on_busy,
        "created_at": info.created_at.isoformat(),
        "messages": [message_to_dict(m) for m in history],
    }


async def import_session(store: Store, data: dict[str, Any]) -> SessionInfo:
    """Recreate an exported session (same id, history, ids and times); SessionExistsError if
    the id is taken. ConfigError says what is wrong with data that is not an export."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"not a parley session export (expected format {FORMAT!r})")
    try:
        session_id = validate_session_id(data["session_id"])
        messages: list[Message] = [message_from_dict(raw) for raw in data["messages"]]
        created = datetime.fromisoformat(data["created_at"])
        info = SessionInfo(
            session_id=session_id,
            model=str(data["model"]),
            title=data.get("title"),
            created_at=created,
            updated_at=created,
            message_count=0,
            usage=Usage(cost=None),
            metadata=dict(data.get("metadata") or {}),
            system_message=data.get("system_message"),
            on_busy=data.get("on_busy", "enqueue"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the session export is damaged: {exc!r}") from exc
    await store.create_session(info)
    if messages:
        await store.append_messages(session_id, messages)
    return await store.get_session(session_id)
