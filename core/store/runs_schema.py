"""The run store's SQLite schema and its migrations (`core.store.runs.RunStore.migrate` runs them).

`_MIGRATIONS[v]` upgrades a version v-1 file to version v inside one transaction, with foreign
keys off so that rebuilding a parent table does not cascade into its children. The layout is
described in docs/storage.md.
"""

from __future__ import annotations

import sqlite3

DB_NAME = "runs.db"
SCHEMA_VERSION = 3   # 3: sweeps (core/sweeps/spec.py) and the runs each one holds
# interrupted: the process running it ended without a final status (docs/storage.md);
# diverged: a loss, reward, gradient or parameter went non-finite (core/rl/faults.py).
STATUSES = ("running", "finished", "stopped", "failed", "interrupted", "diverged")

_RUNS = """CREATE TABLE {name} (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, updated_at REAL NOT NULL,  -- ISO 8601 UTC; unix seconds
    task TEXT NOT NULL, algo TEXT NOT NULL, reward_source TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({statuses})),
    steps_done INTEGER NOT NULL DEFAULT 0, config_json TEXT NOT NULL, error TEXT, name TEXT)"""

_V1 = (
    _RUNS.format(name="runs", statuses="'running', 'finished', 'stopped', 'failed'"),
    "CREATE TABLE metric_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    """CREATE TABLE steps (run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
        step INTEGER NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (run_key, step))
        WITHOUT ROWID""",
    """CREATE TABLE metrics (run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
        name_id INTEGER NOT NULL REFERENCES metric_names(id), step INTEGER NOT NULL, value REAL,
        PRIMARY KEY (run_key, name_id, step)) WITHOUT ROWID""",
    """CREATE TABLE samples (run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
        step INTEGER NOT NULL, idx INTEGER NOT NULL, prompt TEXT, completion TEXT, reward REAL,
        true_reward REAL, extra_json TEXT, PRIMARY KEY (run_key, step, idx)) WITHOUT ROWID""",
    """CREATE TABLE events (id INTEGER PRIMARY KEY,
        run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE, step INTEGER NOT NULL,
        kind TEXT NOT NULL, payload_json TEXT NOT NULL, created_at TEXT NOT NULL)""",
    "CREATE INDEX events_by_run ON events (run_key, step)",
    """CREATE TABLE checkpoints (run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
        step INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run_key, step)) WITHOUT ROWID""",
)


def _v2(conn: sqlite3.Connection) -> None:
    """Statuses `interrupted` and `diverged`: SQLite cannot alter a CHECK, so the runs table is
    rebuilt (keys kept, so the child tables still point at their runs)."""
    conn.execute(_RUNS.format(name="runs_v2",
                              statuses=", ".join(f"'{s}'" for s in STATUSES)))
    conn.execute("INSERT INTO runs_v2 SELECT key, id, created_at, updated_at, task, algo, "
                 "reward_source, status, steps_done, config_json, error, name FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_v2 RENAME TO runs")


def _v3(conn: sqlite3.Connection) -> None:
    """Sweeps: a sweep's spec, and which run is which of its trials (config label and seed). A
    trial is an ordinary run; this table only tags it, so deleting a run drops its tag."""
    conn.execute("""CREATE TABLE sweeps (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, name TEXT NOT NULL, spec_json TEXT NOT NULL,
        status TEXT NOT NULL, updated_at REAL NOT NULL)""")
    conn.execute("""CREATE TABLE sweep_runs (
        sweep_key INTEGER NOT NULL REFERENCES sweeps(key) ON DELETE CASCADE,
        run_key INTEGER NOT NULL UNIQUE REFERENCES runs(key) ON DELETE CASCADE,
        label TEXT NOT NULL, seed INTEGER NOT NULL, PRIMARY KEY (sweep_key, label, seed))
        WITHOUT ROWID""")


_MIGRATIONS = {1: lambda conn: [conn.execute(statement) for statement in _V1], 2: _v2, 3: _v3}


def migrate(conn: sqlite3.Connection, path) -> int:
    """Bring the file at `conn` to SCHEMA_VERSION; returns the version it was at."""
    import logging

    log = logging.getLogger("core.store.runs")
    current = stored_version(conn)
    if current > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema version {current}, newer than this rlhf-explorer "
                         f"understands ({SCHEMA_VERSION}); upgrade rlhf-explorer")
    if current == SCHEMA_VERSION:
        return current
    conn.execute("PRAGMA foreign_keys=OFF")   # a no-op inside a transaction: set before it
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = stored_version(conn)   # another process may have migrated meanwhile
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](conn)
                log.info("migrated %s to schema version %d", path, version)
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise ValueError(f"{path}: a migration broke a foreign key; nothing was changed")
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
    return current


def stored_version(conn: sqlite3.Connection) -> int:
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return row[0] if row else 0


def rename_metric(conn: sqlite3.Connection, old: str, new: str) -> None:
    """For migrations: rename metric `old` to `new` in every stored run (merging into `new` if
    it exists; where both have a value at the same step, `new`'s value is kept)."""
    row = conn.execute("SELECT id FROM metric_names WHERE name = ?", (old,)).fetchone()
    if row is None:
        return
    target = conn.execute("SELECT id FROM metric_names WHERE name = ?", (new,)).fetchone()
    if target is None:
        conn.execute("UPDATE metric_names SET name = ? WHERE id = ?", (new, row[0]))
        return
    conn.execute("UPDATE OR IGNORE metrics SET name_id = ? WHERE name_id = ?", (target[0], row[0]))
    conn.execute("DELETE FROM metrics WHERE name_id = ?", (row[0],))
    conn.execute("DELETE FROM metric_names WHERE id = ?", (row[0],))
