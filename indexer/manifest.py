"""What the index holds, file by file: the indexer's memory between runs.

A small SQLite file in the data folder (never in the posts folder, which may be
read-only). It is written only after the engine has committed the same batch, so
after a crash it may be behind the engine, never ahead: the next run re-writes
those files, and an upsert by id makes that harmless.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    file_hash TEXT NOT NULL,
    id TEXT,
    content_hash TEXT,
    status TEXT NOT NULL,      -- indexed | rejected | pending
    kind TEXT,
    reason TEXT,
    warnings TEXT              -- JSON list: what the parser changed in an indexed file
);
CREATE INDEX IF NOT EXISTS files_content ON files(content_hash);
CREATE INDEX IF NOT EXISTS files_id ON files(id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass(slots=True)
class Entry:
    path: str
    size: int
    mtime_ns: int
    file_hash: str
    id: str | None
    content_hash: str | None
    status: str
    kind: str | None
    reason: str | None
    warnings: str | None = None  # JSON list, kept so that unchanged files still show them


_COLUMNS = "path, size, mtime_ns, file_hash, id, content_hash, status, kind, reason, warnings"


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(files)")}
        if "warnings" not in columns:  # a manifest from before warnings were kept
            self.db.execute("ALTER TABLE files ADD COLUMN warnings TEXT")

    def close(self) -> None:
        self.db.close()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def reset(self) -> None:
        self.db.execute("DELETE FROM files")

    def get(self, path: str) -> Entry | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE path=?", (path,)).fetchone()
        return Entry(*row) if row else None

    def lookup(self, paths: list[str]) -> dict[str, Entry]:
        """Entries of these paths (at most a few hundred per call)."""
        marks = ",".join("?" * len(paths))
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE path IN ({marks})", paths)
        return {r[0]: Entry(*r) for r in rows}

    # -- one run's scan, kept on disk --------------------------------------------
    # A run remembers which paths it saw and which files it must process in
    # temporary tables (SQLite temp files), not in Python lists and sets: the
    # indexer's memory stays the same for a thousand posts or a million.

    def begin_scan(self) -> None:
        self.db.executescript(
            """
            CREATE TEMP TABLE IF NOT EXISTS seen(path TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS todo(
                n INTEGER PRIMARY KEY, fspath TEXT, path TEXT, size INTEGER, mtime_ns INTEGER);
            DELETE FROM temp.seen;
            DELETE FROM temp.todo;
            """
        )

    def saw(self, paths: list[str], todo: list[tuple[str, str, int, int]]) -> None:
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO temp.seen(path) VALUES (?)", [(p,) for p in paths])
            self.db.executemany("INSERT INTO temp.todo(fspath, path, size, mtime_ns) VALUES (?, ?, ?, ?)", todo)

    def todo_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM temp.todo").fetchone()[0])

    def iter_todo(self, page: int = 2000) -> Iterator[tuple[str, str, int, int]]:
        """The files to process, in scan order, a page at a time (the connection
        keeps writing between pages, so no statement stays open)."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT n, fspath, path, size, mtime_ns FROM temp.todo WHERE n > ? ORDER BY n LIMIT ?", (last, page)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for r in rows:
                yield r[1], r[2], r[3], r[4]

    def unseen(self) -> list[Entry]:
        """Entries whose files this scan did not find (deleted from the folder)."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE path NOT IN (SELECT path FROM temp.seen) ORDER BY path")
        return [Entry(*r) for r in rows]

    def owner_of_content(self, content_hash: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT path, id FROM files WHERE content_hash=? AND status='indexed' LIMIT 1", (content_hash,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def owner_of_id(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT path FROM files WHERE id=? AND status='indexed' LIMIT 1", (doc_id,)).fetchone()
        return row[0] if row else None

    def record(self, entries: Iterable[Entry]) -> None:
        with self.transaction():
            self.db.executemany(
                f"INSERT OR REPLACE INTO files({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.path, e.size, e.mtime_ns, e.file_hash, e.id, e.content_hash, e.status, e.kind, e.reason, e.warnings)
                    for e in entries
                ],
            )

    def forget(self, paths: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())

    def transaction(self):
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def manifest_path(data_dir: Path, engine: str, alias: str, suffix: str = "") -> Path:
    return Path(data_dir) / "state" / f"{engine}-{alias}{suffix}.sqlite"


def replace_manifest(src: Path, dst: Path) -> None:
    """Atomically make a rebuilt manifest the current one."""
    for ext in ("-wal", "-shm"):
        p = Path(str(dst) + ext)
        if p.exists():
            p.unlink()
    os.replace(src, dst)
