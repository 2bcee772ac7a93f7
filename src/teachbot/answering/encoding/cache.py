"""Vectors already computed, kept on disk, so retraining after a few corrections encodes only what is new.

One SQLite file (``<data_dir>/cache/vectors.sqlite3``) keyed by (model id, sha256 of the text). SQLite's
journal makes every write all-or-nothing, so a crash mid-write leaves the cache as it was; a file that is
not a readable database is deleted and rebuilt. The least recently used vectors go once the file passes
``max_bytes``. A cache that cannot be used only costs time: the texts are encoded as if it were empty.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from teachbot.answering.encoding.encoder import Encoder

log = logging.getLogger(__name__)

CACHE_FILE = "vectors.sqlite3"
MAX_BYTES = 200 * 2**20
_ROW_OVERHEAD = 96  # key, model id and SQLite's own bytes per row, roughly
_CHUNK = 500  # keys per query (SQLite allows 32,766 parameters)
_TOUCH_NS = 3600 * 10**9  # a hit refreshes its last-use time (ns) at most this often
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key BLOB NOT NULL,
    vector BLOB NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
CREATE TABLE IF NOT EXISTS models (model TEXT PRIMARY KEY, dim INTEGER NOT NULL);
"""
_RECORD_DIM = "INSERT OR REPLACE INTO models VALUES (?, ?)"  # each model's width, so a stored vector needs no model


class CachedEncoder:
    """An ``Encoder`` that asks the model only for texts it has not seen with this model before.
    Meant for texts that come back (examples, taught questions); safe to call from several threads."""

    def __init__(self, encoder: Encoder, folder: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self._encoder = encoder
        self._path = folder / CACHE_FILE
        self._max_bytes = max_bytes  # in rows once the width is known: a lazy encoder is not loaded here
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._dim: int | None = None
        with self._lock:
            self._open()

    @property
    def model_id(self) -> str:
        return self._encoder.model_id

    @property
    def dim(self) -> int:
        """The model's width as recorded with its vectors (asking the model would load a lazily loaded one)."""
        if self._dim is None:
            with self._lock:
                recorded = self._recorded_dim()
            if recorded is None:  # a cache from before the record, or a new one: ask once, record for next time
                recorded = self._encoder.dim
                with self._lock:
                    self._record_dim(recorded)
            self._dim = recorded
        return self._dim

    @property
    def path(self) -> Path:
        return self._path

    @property
    def inner(self) -> Encoder:
        """The encoder itself, for texts not worth keeping (a question asked once)."""
        return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_key(text) for text in texts]
        with self._lock:
            found = self._lookup(set(keys))
        # every text stored: the recorded width will do, so a lazily loaded model stays unloaded (a retrain
        # on known texts, a fit that released the model); otherwise the model is needed anyway and decides
        dim = self.dim if all(key in found for key in keys) else self._encoder.dim
        found = {key: blob for key, blob in found.items() if len(blob) == dim * 4}  # a damaged row is missing
        out = np.zeros((len(texts), dim), dtype=np.float32)
        missing: dict[bytes, str] = {}
        for row, key in enumerate(keys):
            if key in found:
                out[row] = _vector(found[key], dim)
            else:
                missing.setdefault(key, texts[row])
        if missing:
            vectors = self._encoder.encode(list(missing.values()))
            new = dict(zip(missing, vectors, strict=True))
            for row, key in enumerate(keys):
                if key in new:
                    out[row] = new[key]
            with self._lock:
                self._store(new)
        return out

    def reads(self, text: str) -> bool:
        return self.inner.reads(text)

    def preload(self) -> None:
        """Begin loading a lazily loaded model in the background (nothing for a loaded one)."""
        start = getattr(self._encoder, "start", None)
        if start is not None:
            start()

    def known(self, text: str) -> np.ndarray | None:
        """The vector already stored for ``text`` (a training or taught prompt asked word for word), without
        asking the model or storing anything: a question asked once is not worth keeping."""
        with self._lock:
            if self._db is None:
                return None
            try:
                row = self._db.execute(
                    "SELECT vector FROM vectors WHERE model = ? AND key = ?", (self.model_id, _key(text))
                ).fetchone()
            except sqlite3.Error as exc:
                self._failed(exc, "read")
                return None
        if row is None or not row[0] or len(row[0]) % 4:  # never ``self.dim``: it would load a lazy encoder
            return None
        return _vector(row[0], len(row[0]) // 4)

    def close(self) -> None:
        closing = getattr(self._encoder, "close", None)  # a lazily loading encoder may still be loading
        if closing is not None:
            closing()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> CachedEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- storage (every method below runs under self._lock)
    def _open(self) -> None:
        try:
            self._db = self._connect()
        except sqlite3.Error as exc:
            self._failed(exc, "opened")
        except OSError as exc:
            log.warning("vector cache %s not opened (%s); encoding without it", self._path, exc)

    def _failed(self, problem: sqlite3.Error, what: str) -> None:
        """Rebuild a damaged file; anything else (locked, disk full, read-only) only skips the cache this time."""
        if getattr(problem, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            self._rebuild(problem)
        else:
            log.warning("vector cache %s not %s (%s)", self._path, what, problem)

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, problem: Exception) -> None:
        """Replace a damaged file by an empty cache (or run without one)."""
        log.warning("vector cache %s is damaged (%s); starting a new one", self._path, problem)
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self._path}{suffix}").unlink(missing_ok=True)
            self._db = self._connect()
        except (OSError, sqlite3.Error) as exc:
            log.warning("vector cache %s cannot be rebuilt (%s); encoding without it", self._path, exc)

    def _lookup(self, keys: set[bytes]) -> dict[bytes, bytes]:
        """The stored vectors of ``keys`` found, as bytes (their width is checked by the caller)."""
        if self._db is None or not keys:
            return {}
        found: dict[bytes, bytes] = {}
        now = time.time_ns()
        try:
            for chunk in _chunks(sorted(keys)):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})", (self.model_id, *chunk)
                ).fetchall()
                found.update(rows)
                self._db.execute(
                    f"UPDATE vectors SET used = ? WHERE model = ? AND used < ? AND key IN ({marks})",
                    (now, self.model_id, now - _TOUCH_NS, *chunk),
                )
        except sqlite3.Error as exc:
            self._failed(exc, "read")
        return found

    def _recorded_dim(self) -> int | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT dim FROM models WHERE model = ?", (self.model_id,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc, "read")
            return None
        return row[0] if row is not None and isinstance(row[0], int) and row[0] > 0 else None

    def _record_dim(self, dim: int) -> None:
        if self._db is None:
            return
        try:
            self._db.execute(_RECORD_DIM, (self.model_id, dim))
        except sqlite3.Error as exc:
            self._failed(exc, "written")

    def _store(self, vectors: dict[bytes, np.ndarray]) -> None:
        if self._db is None:
            return
        now = time.time_ns()
        self._dim = dim = self._encoder.dim  # loaded: it just encoded them
        rows = [(self.model_id, key, np.asarray(v, dtype="<f4").tobytes(), now) for key, v in vectors.items()]
        try:
            with _transaction(self._db):
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
                self._db.execute(_RECORD_DIM, (self.model_id, dim))
                (count,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
                max_rows = max(1, self._max_bytes // (dim * 4 + _ROW_OVERHEAD))
                if count > max_rows:  # drop the least recently used tenth beyond the bound
                    excess = count - max_rows * 9 // 10
                    self._db.execute(
                        "DELETE FROM vectors WHERE (model, key) IN "
                        "(SELECT model, key FROM vectors ORDER BY used LIMIT ?)",
                        (excess,),
                    )
        except sqlite3.Error as exc:
            self._failed(exc, "written")


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any error (the connection is in autocommit mode otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def uncached(encoder: Encoder) -> Encoder:
    """The encoder behind a cache (or the encoder itself): for one-off texts such as questions."""
    return encoder.inner if isinstance(encoder, CachedEncoder) else encoder


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _vector(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)


def _chunks(keys: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]
