"""The rankings store: every ranking a person (or the simulated annotator, or an import) gave.

It lives beside the run store in the same data folder, in its own SQLite file `rankings.db`, so
rankings outlive the runs that produced their samples and a damaged run store never costs one.
Durability is the run store's: WAL with `synchronous=FULL`, and each `add` is ONE committed
transaction before it returns. The window acknowledges a ranking only after `add` returned, so an
acknowledged ranking survives a crash. An import is one transaction for the whole file: all of it
or none.

A ranking is K responses to one prompt with ranks 1..K, 1 = best; equal ranks are ties. A group a
person marked "not rankable" is kept with `ranks = None`: it is data about the samples, but no
reward model trains on it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.storage import SQLiteStore

if TYPE_CHECKING:
    from core.reward_learning.reward_model import Ranking

DB_NAME = "rankings.db"
SCHEMA_VERSION = 2   # 2: source "judge" (a judge program, feedback_by=command)
SOURCES = ("person", "simulated", "imported", "judge")
MAX_K = 16

_SCHEMA = (
    """CREATE TABLE rankings (id INTEGER PRIMARY KEY, task TEXT NOT NULL, prompt TEXT NOT NULL,
        responses_json TEXT NOT NULL, ranks_json TEXT,  -- NULL: marked "not rankable"
        source TEXT NOT NULL CHECK (source IN ('person', 'simulated', 'imported', 'judge')),
        policy TEXT NOT NULL, created_at TEXT NOT NULL, updated_at REAL NOT NULL,
        margin REAL, true_json TEXT)""",
    "CREATE INDEX rankings_by_task ON rankings (task, source)",
)


@dataclass(frozen=True)
class StoredRanking:
    id: int
    task: str
    prompt: str
    responses: tuple[str, ...]
    ranks: tuple[int, ...] | None     # None: the person marked the group "not rankable"
    source: str                       # person / simulated / imported
    policy: str                       # what produced the responses: "base", "run ID step N", ...
    created_at: str                   # ISO 8601 UTC, seconds
    margin: float | None = None       # a pairwise import's optional margin
    true: tuple[float, ...] = field(default=())  # hidden true rewards when known; never shown

    @property
    def rankable(self) -> bool:
        return self.ranks is not None

    def to_training(self) -> Ranking:
        if self.ranks is None:
            raise ValueError(f"ranking {self.id} was marked not rankable")
        from core.reward_learning.reward_model import Ranking  # torch, only when training

        return Ranking(self.prompt, self.responses, self.ranks, self.true)


def check_ranking(responses, ranks) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """Validate and normalise one ranking; ValueError says what is wrong."""
    if isinstance(responses, str) or not isinstance(responses, (list, tuple)):
        raise ValueError("responses must be a list of strings")
    if not 2 <= len(responses) <= MAX_K:
        raise ValueError(f"a ranking needs 2 to {MAX_K} responses, got {len(responses)}")
    if not all(isinstance(r, str) for r in responses):
        raise ValueError("every response must be a string")
    if ranks is None:
        return tuple(responses), None
    if isinstance(ranks, str) or not isinstance(ranks, (list, tuple)):
        raise ValueError("ranks must be a list of whole numbers, 1 = best")
    if len(ranks) != len(responses):
        raise ValueError(f"{len(ranks)} ranks for {len(responses)} responses; give one rank each")
    k = len(responses)
    out = []
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) \
                or r != int(r) or not 1 <= r <= k:
            raise ValueError(f"rank {r!r} is not a whole number in 1..{k} (1 = best)")
        out.append(int(r))
    return tuple(responses), tuple(out)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RankingStore(SQLiteStore):
    """`rankings.db` in `data_dir`. One instance per thread (sqlite3 connections are not shared
    between threads); several may be open on the same folder."""

    FILE, WHAT, SCHEMA_VERSION = DB_NAME, "rankings store", SCHEMA_VERSION

    def _schema_version(self) -> int:
        if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'"
                                  ).fetchone():
            return 0
        row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        return row[0] if row else 0

    def _ready(self, version: int) -> None:
        if not self.read_only and not version:
            self._create_empty()
        elif not self.read_only and version < SCHEMA_VERSION:
            self._migrate(version)

    def _create_empty(self) -> None:
        with self._tx() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            if conn.execute("SELECT version FROM schema_version").fetchone() is None:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def _migrate(self, version: int) -> None:
        """Bring an older store up to SCHEMA_VERSION in one transaction: all or nothing."""
        with self._tx() as conn:
            if version < 2:   # widen the source CHECK: SQLite rebuilds the table for that
                conn.execute("ALTER TABLE rankings RENAME TO rankings_v1")
                conn.execute("DROP INDEX IF EXISTS rankings_by_task")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("INSERT INTO rankings SELECT * FROM rankings_v1")
                conn.execute("DROP TABLE rankings_v1")
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    # --- writing
    @staticmethod
    def _row(task, prompt, responses, ranks, source, policy, margin, true):
        if source not in SOURCES:
            raise ValueError(f"unknown ranking source {source!r}; expected one of "
                             f"{', '.join(SOURCES)}")
        if not isinstance(prompt, str):
            raise ValueError("prompt must be a string")
        responses, ranks = check_ranking(responses, ranks)
        true_json = json.dumps([float(t) for t in true]) if true is not None and len(true) else None
        return (task, prompt, json.dumps(list(responses)),
                None if ranks is None else json.dumps(list(ranks)), source, str(policy),
                _utc_now(), time.time(), None if margin is None else float(margin), true_json)

    _INSERT = ("INSERT INTO rankings (task, prompt, responses_json, ranks_json, source, policy, "
               "created_at, updated_at, margin, true_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    def add(self, task: str, prompt: str, responses, ranks, source: str = "person",
            policy: str = "base", margin: float | None = None, true=None) -> int:
        """Store one ranking (ranks None = not rankable) and return its id, committed."""
        row = self._row(task, prompt, responses, ranks, source, policy, margin, true)
        with self._tx() as conn:
            return int(conn.execute(self._INSERT, row).lastrowid)

    def add_many(self, items: Iterable[dict]) -> list[int]:
        """Store many rankings in ONE transaction (an import): all of them, or none on error.
        Each item holds add()'s arguments by name."""
        rows = [self._row(it["task"], it["prompt"], it["responses"], it.get("ranks"),
                          it.get("source", "imported"), it.get("policy", "imported"),
                          it.get("margin"), it.get("true")) for it in items]
        with self._tx() as conn:
            return [int(conn.execute(self._INSERT, row).lastrowid) for row in rows]

    def update_ranks(self, ranking_id: int, ranks) -> None:
        """Edit a stored ranking's ranks (None = not rankable)."""
        current = self.get(ranking_id)
        _, ranks = check_ranking(list(current.responses), ranks)
        with self._tx() as conn:
            conn.execute("UPDATE rankings SET ranks_json = ?, updated_at = ? WHERE id = ?",
                         (None if ranks is None else json.dumps(list(ranks)), time.time(),
                          ranking_id))

    def delete(self, ranking_id: int) -> None:
        with self._tx() as conn:
            if not conn.execute("DELETE FROM rankings WHERE id = ?", (ranking_id,)).rowcount:
                raise KeyError(f"no ranking {ranking_id} in {self.path}")

    # --- reading
    @staticmethod
    def _from_row(row) -> StoredRanking:
        (rid, task, prompt, responses, ranks, source, policy, created, margin, true) = row
        return StoredRanking(rid, task, prompt, tuple(json.loads(responses)),
                             None if ranks is None else tuple(json.loads(ranks)), source, policy,
                             created, margin, tuple(json.loads(true)) if true else ())

    _SELECT = ("SELECT id, task, prompt, responses_json, ranks_json, source, policy, created_at, "
               "margin, true_json FROM rankings")

    def get(self, ranking_id: int) -> StoredRanking:
        row = self._conn.execute(self._SELECT + " WHERE id = ?", (ranking_id,)).fetchone()
        if row is None:
            raise KeyError(f"no ranking {ranking_id} in {self.path}")
        return self._from_row(row)

    def list(self, task: str | None = None, sources: Iterable[str] | None = None,
             rankable_only: bool = False) -> list[StoredRanking]:
        """Oldest first, filtered by task and sources."""
        where, args = [], []
        if task is not None:
            where.append("task = ?")
            args.append(task)
        if sources is not None:
            sources = list(sources)
            where.append(f"source IN ({', '.join('?' * len(sources))})")
            args += sources
        if rankable_only:
            where.append("ranks_json IS NOT NULL")
        sql = self._SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._from_row(r) for r in self._conn.execute(sql, args)]

    def counts(self, task: str | None = None) -> dict[str, int]:
        """Rankings per source (not-rankable groups counted under "not_rankable")."""
        sql = ("SELECT CASE WHEN ranks_json IS NULL THEN 'not_rankable' ELSE source END, "
               "count(*) FROM rankings" + (" WHERE task = ?" if task else "") + " GROUP BY 1")
        return dict(self._conn.execute(sql, (task,) if task else ()).fetchall())

    def summary(self) -> list[dict]:
        """One row per (task, source): counts, for `rankings list`."""
        sql = ("SELECT task, source, count(*), sum(ranks_json IS NULL), min(created_at), "
               "max(created_at) FROM rankings GROUP BY task, source ORDER BY task, source")
        return [{"task": t, "source": s, "rankings": n, "not_rankable": int(u or 0),
                 "first": a, "last": b} for t, s, n, u, a, b in self._conn.execute(sql)]
