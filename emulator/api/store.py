"""The API server's records in an embedded SQLite database under the state dir, so they outlive the process.

One table: a row per resource (kind, name), holding its ARN, creation time, its Describe-shaped data and its
tags as JSON. Timestamps survive the round trip (``{"$t": epoch}``). Thread-safe: one connection, one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL,
    tags TEXT NOT NULL,
    PRIMARY KEY (kind, name)
)
"""


@dataclass
class Record:
    """One resource as the server remembers it."""

    kind: str
    name: str
    arn: str
    created: datetime
    #: The Describe shape (jobs, endpoints, executions) or the Create request plus its metadata (models, configs).
    data: dict[str, Any]
    tags: list[dict[str, str]] = field(default_factory=list)


class Store:
    """Records by (kind, name); ``path`` None keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def put(self, record: Record) -> None:
        """Insert or replace a record."""
        row = (
            record.kind,
            record.name,
            record.arn,
            record.created.timestamp(),
            json.dumps(record.data, default=_encode),
            json.dumps(record.tags),
        )
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?, ?)", row)

    def delete(self, kind: str, name: str) -> None:
        """Forget a record (no error if there is none)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM resources WHERE kind = ? AND name = ?", (kind, name))

    def all(self) -> Iterator[Record]:
        """Every record, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM resources ORDER BY created").fetchall()
        for kind, name, arn, created, data, tags in rows:
            yield Record(
                kind,
                name,
                arn,
                datetime.fromtimestamp(created, UTC),
                json.loads(data, object_hook=_decode),
                json.loads(tags),
            )

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$t": value.timestamp()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$t" in obj:
        return datetime.fromtimestamp(obj["$t"], UTC)
    return obj
