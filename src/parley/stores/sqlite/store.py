"""`sqlite:///path.db`: the embedded default, one file in WAL mode.

Two connections. Writes, and reads of one row, run on the event loop's own thread: each is a
short `BEGIN IMMEDIATE` transaction that appends a few rows to the WAL (no fsync with
``synchronous=NORMAL``), which takes tens of microseconds, less than a hand-off to another
thread and back, whose wake-ups contend for the GIL with whatever the loop is doing (measured:
0.3-0.6 ms a write during a turn; bench/RESULTS.md). Reads that can be long (a whole history, a
page of sessions) and WAL checkpoints, which fsync, run on a second connection owned by one
worker thread, so the loop never waits for them; WAL gives that reader a consistent snapshot
beside the writer. A committed write survives the process being killed (only an OS crash or
power loss can take the last commits).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

from parley.comparison import Comparison, ComparisonPage
from parley.errors import (
    ComparisonNotFoundError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
)
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, Usage, utcnow
from parley.stores.base import (
    SessionQuery,
    comparison_exists,
    comparison_from_json,
    encode_cursor,
    from_micros,
    session_filter,
    settings_from_json,
    settings_to_json,
    to_micros,
    total_usage,
)
from parley.stores.comparisons import ComparisonSQL
from parley.stores.sqlite.schema import (
    MESSAGE_COLUMNS,
    message_from_row,
    message_key,
    message_to_row,
    migrate,
)

__all__ = ["SQLiteStore"]

log = logging.getLogger("parley")

_CHECKPOINT_EVERY = 128
"""Writes between checkpoints on the worker thread (each write adds two or three pages)."""
_CHECKPOINT_WHEN_QUIET = 1.0
"""Seconds after a write with no checkpoint since: one runs then, catches up with the writer,
and the next write starts the WAL again from its beginning."""
_WAL_PAGES_AT_MOST = 4096
"""Should the worker's checkpoints never catch up (writes without a pause), the writer itself
checkpoints at this many pages (32 MB), on the loop's thread, as SQLite does by default at
1,000 (each such stop is a few milliseconds)."""

T = TypeVar("T")
_COMPARISONS = ComparisonSQL("?")

_SESSION_COLUMNS = (
    "session_id, model, title, system_message, metadata, created_at, updated_at, "
    "message_count, input_tokens, output_tokens, cost, cached_tokens, settings"
)


def _row_to_info(row: tuple[Any, ...]) -> SessionInfo:
    return SessionInfo(
        session_id=row[0],
        model=row[1],
        title=row[2],
        system_message=row[3],
        metadata=json.loads(row[4]),
        created_at=from_micros(row[5]),
        updated_at=from_micros(row[6]),
        message_count=row[7],
        usage=Usage(input_tokens=row[8], output_tokens=row[9], cost=row[10], cached_tokens=row[11]),
        **settings_from_json(row[12]),
    )


class SQLiteStore:
    """A store in one SQLite file; its folder is created when missing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        """The writer: used on the event loop's thread only."""
        self._reader: sqlite3.Connection | None = None
        """Long reads and checkpoints: used on the worker thread only."""
        self._executor: ThreadPoolExecutor | None = None
        self._lock_file: IO[str] | None = None
        self._writes_since_checkpoint = 0
        self._checkpointing = False
        self._quiet: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # --- plumbing ---------------------------------------------------------------------------

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"SQLite store {str(self.path)!r} failed: {exc}")

    def _not_open(self) -> StoreError:
        return StoreError(f"{self!r} is not open; start the client (or await store.open())")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(reader)` on the worker thread."""
        if self._executor is None or self._reader is None:
            raise self._not_open()
        conn = self._reader

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise self._failed(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _here(self, fn: Callable[[sqlite3.Connection], T], *, writes: bool = True) -> T:
        """`fn(writer)` right here, on the loop's thread (see the module's docstring)."""
        conn = self._conn
        if conn is None:
            raise self._not_open()
        try:
            result = fn(conn)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise self._failed(exc) from exc
        if writes:
            self._writes_since_checkpoint += 1
            if self._writes_since_checkpoint >= _CHECKPOINT_EVERY and not self._checkpointing:
                self._start_checkpoint()
            elif self._quiet is None:
                loop = asyncio.get_running_loop()
                self._quiet = loop.call_later(_CHECKPOINT_WHEN_QUIET, self._checkpoint_if_written)
        return result

    def _checkpoint_if_written(self) -> None:
        self._quiet = None
        if self._writes_since_checkpoint and not self._checkpointing:
            self._start_checkpoint()

    def _start_checkpoint(self) -> None:
        """Copy the WAL into the database on the worker thread (PASSIVE: it never waits for,
        nor blocks, the writer), without anyone waiting for it."""
        executor, reader = self._executor, self._reader
        if executor is None or reader is None:
            return
        self._checkpointing = True
        self._writes_since_checkpoint = 0

        def checkpoint() -> None:
            try:
                reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:  # the next one will try again; nothing is lost meanwhile
                log.warning("checkpoint of %s failed", self.path, exc_info=True)
            finally:
                self._checkpointing = False

        executor.submit(checkpoint)

    def _claim(self) -> IO[str] | None:
        """Hold `<file>.lock` while open: the turn queue lives in this process, so a second
        client on the same file could interleave turns. The OS drops the lock if we die."""
        if sys.platform == "win32":  # pragma: no cover - no flock there
            return None
        import fcntl

        handle = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(
                f"SQLite store {str(self.path)!r} is already open in another parley client "
                f"(process {owner}); a SQLite store serves one client at a time. Stop the "
                "other client, or give this one its own file or memory://"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _connect(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._claim()
        try:
            writer = self._open_connection()
            try:
                reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                reader.execute("PRAGMA busy_timeout = 5000")
            except BaseException:
                writer.close()
                raise
            return writer, reader
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file drops the flock
            self._lock_file = None

    def _open_connection(self) -> sqlite3.Connection:
        # Autocommit mode: every write below opens its own explicit transaction.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # It waits on the loop's thread: only another program writing the file could make
            # it wait at all (a second parley client is refused, see _claim).
            conn.execute("PRAGMA busy_timeout = 1000")
            # Takes effect only on a new file (before its first table). A typical reply is a
            # row of 1-2 KB; rows never split across pages, so 4 KB pages were a third empty
            # and 8 KB pages are about a tenth (bench/RESULTS.md, storage).
            conn.execute("PRAGMA page_size = 8192")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"could not put {str(self.path)!r} in WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # Checkpoints run on the worker thread (_start_checkpoint); this is the backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES_AT_MOST}")
            conn.execute(f"PRAGMA journal_size_limit = {16 * 1024 * 1024}")
            migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-sqlite")
        try:
            self._conn, self._reader = await asyncio.get_running_loop().run_in_executor(
                executor, self._connect
            )
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise StoreError(
                f"cannot open SQLite store {str(self.path)!r}: {exc}; check that the path is a "
                "writable file in a folder you can create"
            ) from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        if self._conn is None or self._reader is None or self._executor is None:
            return
        writer, reader, executor = self._conn, self._reader, self._executor
        self._conn = self._reader = None  # from here on, calls say the store is not open
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None

        def close() -> None:
            reader.close()
            writer.close()  # the last connection: checkpoints the WAL and removes it

        await asyncio.get_running_loop().run_in_executor(executor, close)
        self._release()
        self._executor = None
        executor.shutdown(wait=True)

    # --- sessions ---------------------------------------------------------------------------

    async def create_session(self, info: SessionInfo) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            # the session's number keys its messages (schema.py); a deleted session's
            # messages went with it, so reusing the highest number is harmless
            (number,) = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM sessions").fetchone()
            try:
                conn.execute(
                    f"INSERT INTO sessions (number, {_SESSION_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        number,
                        info.session_id,
                        info.model,
                        info.title,
                        info.system_message,
                        json.dumps(dict(info.metadata), ensure_ascii=False),
                        to_micros(info.created_at),
                        to_micros(info.updated_at),
                        info.message_count,
                        info.usage.input_tokens,
                        info.usage.output_tokens,
                        info.usage.cost,
                        info.usage.cached_tokens,
                        settings_to_json(info),
                    ),
                )
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                raise SessionExistsError(info.session_id) from None
            conn.executemany(
                "INSERT INTO session_tags (session_id, key, value) VALUES (?,?,?)",
                [(info.session_id, k, v) for k, v in info.metadata.items()],
            )
            conn.execute("COMMIT")

        self._here(write)

    async def get_session(self, session_id: str) -> SessionInfo:
        def read(conn: sqlite3.Connection) -> SessionInfo:
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise SessionNotFoundError(session_id)
            return _row_to_info(row)

        return self._here(read, writes=False)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        where, params = session_filter(query, "?")
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions s{where}"
        sql += " ORDER BY updated_at DESC, session_id DESC LIMIT ?"
        params.append(query.limit + 1)

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        rows = await self._run(read)
        infos = [_row_to_info(row) for row in rows[: query.limit]]
        cursor = None
        if len(rows) > query.limit:
            cursor = encode_cursor(infos[-1].updated_at, infos[-1].session_id)
        return SessionPage(tuple(infos), cursor)

    async def update_session(
        self,
        session_id: str,
        *,
        model: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        sets = ["updated_at = ?"]
        params: list[Any] = [to_micros(utcnow())]
        if model is not None:
            sets.append("model = ?")
            params.append(model)
        if title is not None:
            sets.append("title = ?")
            params.append(title)
        if metadata is not None:
            sets.append("metadata = ?")
            params.append(json.dumps(dict(metadata), ensure_ascii=False))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(
                f"UPDATE sessions SET {', '.join(sets)} WHERE session_id = ?",
                (*params, session_id),
            )
            if cursor.rowcount == 0:
                conn.execute("ROLLBACK")
                raise SessionNotFoundError(session_id)
            if metadata is not None:
                conn.execute("DELETE FROM session_tags WHERE session_id = ?", (session_id,))
                conn.executemany(
                    "INSERT INTO session_tags (session_id, key, value) VALUES (?,?,?)",
                    [(session_id, k, v) for k, v in metadata.items()],
                )
            conn.execute("COMMIT")

        self._here(write)

    async def delete_session(self, session_id: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "DELETE FROM sessions WHERE session_id = ? RETURNING number", (session_id,)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise SessionNotFoundError(session_id)
            conn.execute(
                "DELETE FROM messages WHERE key >= ? AND key < ?",
                (message_key(row[0], 0), message_key(row[0] + 1, 0)),
            )
            conn.execute("COMMIT")

        self._here(write)

    # --- history ----------------------------------------------------------------------------

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        rows = [message_to_row(m) for m in messages]
        usage = total_usage(messages)
        now = to_micros(utcnow())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT number, message_count FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise SessionNotFoundError(session_id)
            first = message_key(row[0], row[1])
            conn.executemany(
                f"INSERT INTO messages (key, {MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(first + i, *r) for i, r in enumerate(rows)],
            )
            conn.execute(
                "UPDATE sessions SET message_count = message_count + ?, updated_at = ?, "
                "input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
                "cached_tokens = cached_tokens + ?, "
                # an unknown price (NULL) adds nothing; a known one starts or grows the sum
                "cost = CASE WHEN ? IS NULL THEN cost ELSE COALESCE(cost, 0) + ? END "
                "WHERE session_id = ?",
                (
                    len(rows),
                    now,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_tokens,
                    usage.cost,
                    usage.cost,
                    session_id,
                ),
            )
            conn.execute("COMMIT")

        self._here(write)

    async def read_messages(self, session_id: str) -> list[Message]:
        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            conn.execute("BEGIN")  # one snapshot: the session's number and its rows agree
            try:
                row = conn.execute(
                    "SELECT number FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                if row is None:
                    raise SessionNotFoundError(session_id)
                return conn.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE key >= ? AND key < ? "
                    "ORDER BY key",
                    (message_key(row[0], 0), message_key(row[0] + 1, 0)),
                ).fetchall()
            finally:
                conn.execute("COMMIT")

        rows = await self._run(read)
        return [message_from_row(row) for row in rows]

    # --- comparisons ------------------------------------------------------------------------

    async def save_comparison(self, comparison: Comparison, *, new: bool = False) -> None:
        sql, params = _COMPARISONS.save(comparison, new=new)

        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, params)
            except sqlite3.IntegrityError:
                raise comparison_exists(comparison.comparison_id) from None

        self._here(write)

    async def get_comparison(self, comparison_id: str) -> Comparison:
        sql, params = _COMPARISONS.get(comparison_id)
        row = self._here(lambda conn: conn.execute(sql, params).fetchone(), writes=False)
        if row is None:
            raise ComparisonNotFoundError(comparison_id)
        return comparison_from_json(comparison_id, row[0])

    async def list_comparisons(self, limit: int, cursor: str | None) -> ComparisonPage:
        sql, params = _COMPARISONS.list(limit, cursor)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return _COMPARISONS.page(rows, limit)

    async def delete_comparison(self, comparison_id: str) -> None:
        sql, params = _COMPARISONS.delete(comparison_id)
        if self._here(lambda conn: conn.execute(sql, params).fetchone()) is None:
            raise ComparisonNotFoundError(comparison_id)
