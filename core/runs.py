"""Run storage: config, per-step metrics, samples, events and checkpoints of RL runs in SQLite.

One data folder (`resolve_data_dir`) holds `runs.db` and `runs/<run id>/` (checkpoints, files).
Durability: WAL mode with `synchronous=FULL`; `log_step` writes a step's metrics, samples and the
run's `steps_done` in ONE transaction, so a crash loses at most the step in flight.

Threads and processes: a `RunStore` owns one SQLite connection, usable only from the thread that
opened it (sqlite3's `check_same_thread`), so every thread or process makes its own `RunStore` on
the same folder: typically one writer (the training worker) and readers (the GUI). WAL lets
readers go on while the writer commits; writers take the lock up front (`BEGIN IMMEDIATE`) and
wait up to 30 s for one another instead of failing with "database is locked".

Schema: `_V1` below; `migrate` upgrades older files (e.g. a future metric rename). Child tables
reference a run's integer `key` (ON DELETE CASCADE). Metrics are stored long, one row per (run,
name id, step) clustered in that order, so one metric over all steps is one index range. NaN is
stored as NULL (SQLite has no NaN), +-inf as SQLite's infinities; a missing metric has no row.
JSON columns (config, events, sample extras) use Python's json, which allows NaN/Infinity.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

log = logging.getLogger(__name__)

ENV_VAR = "RLHF_EXPLORER_DATA"
DB_NAME = "runs.db"
SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "stopped", "failed")
_INFO = "id, created_at, task, algo, reward_source, status, steps_done, name"
_SAMPLE_FIELDS = ("prompt", "completion", "reward", "true_reward")


def default_data_dir() -> Path:
    """`$RLHF_EXPLORER_DATA` if set (and not empty), else the platform's user data folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_path("rlhf-explorer"))


def resolve_data_dir(cli_value: str | None = None) -> Path:
    """The data folder to use: the CLI flag wins over the env var over platformdirs; created."""
    path = Path(cli_value).expanduser() if cli_value else default_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


class UnknownRun(KeyError, ValueError):
    """No run with this id in the store (a KeyError and a ValueError, for either kind of caller)."""

    def __init__(self, run_id: str, data_dir: Path | None = None):
        where = f" in {data_dir}" if data_dir is not None else ""
        self.run_id, self.message = run_id, (f"no run {run_id!r}{where}; list run ids with "
                                             "`rlhf-explorer runs` (or RunStore.list_runs())")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RunInfo:
    id: str
    created_at: str  # ISO 8601, UTC, seconds
    task: str
    algo: str
    reward_source: str
    status: str
    steps_done: int
    name: str | None


# --- schema and migrations. _MIGRATIONS[v] upgrades a version v-1 file to version v.
_V1 = (
    """CREATE TABLE runs (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, updated_at REAL NOT NULL,  -- ISO 8601 UTC; unix seconds
        task TEXT NOT NULL, algo TEXT NOT NULL, reward_source TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped', 'failed')),
        steps_done INTEGER NOT NULL DEFAULT 0, config_json TEXT NOT NULL, error TEXT, name TEXT)""",
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
# Each takes the connection inside the migration's transaction; a later one may, for example,
# call `rename_metric` and rebuild a table.
_MIGRATIONS = {1: lambda conn: [conn.execute(statement) for statement in _V1]}


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


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(text).lower()).strip("_") or "x"


def _as_float(key: object, value: object) -> float:
    if not isinstance(key, str) or not key:
        raise ValueError(f"metric names must be non-empty strings, got {key!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"metric {key!r} must be a real number, got {type(value).__name__} "
                         f"{value!r:.60}")
    return float(value)


def _to_db(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _from_db(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _json_default(obj: Any) -> Any:
    """Events may carry numpy/torch scalars or other odd values: keep them readable."""
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


class RunStore:
    """The run store in `data_dir` (created if needed). One instance per thread; see module doc."""

    def __init__(self, data_dir: str | os.PathLike[str]):
        self.data_dir = Path(data_dir).expanduser()
        self.runs_dir = self.data_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_NAME
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self._conn.close()
            raise

    # --- plumbing
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction. Writes take the write lock up front (IMMEDIATE) so that busy waiting
        applies; multi-query reads use DEFERRED to see one consistent snapshot."""
        self._conn.execute(f"BEGIN {mode}")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def migrate(self) -> int:
        """Bring the file to SCHEMA_VERSION (idempotent; run on open) and return the version."""
        with self._tx() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise ValueError(f"{self.path} has schema version {current}, newer than this "
                                 f"rlhf-explorer understands ({SCHEMA_VERSION}); upgrade it")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](conn)
                log.info("migrated %s to schema version %d", self.path, version)
            if current != SCHEMA_VERSION:
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        return SCHEMA_VERSION

    def _key(self, run_id: str) -> int:
        row = self._conn.execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(run_id, self.data_dir)
        return row[0]

    # --- writing
    def create_run(self, config: dict, task: str, algo: str, reward_source: str,
                   name: str | None = None) -> str:
        """Record a new 'running' run and return its id, e.g. `20261124-081530-ppo-sentiment-3f2a`
        (local start time, algo, task, random suffix). Creates `runs/<id>/` for its files."""
        try:
            config_json = json.dumps(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run config is not JSON-serialisable: {exc}") from exc
        prefix = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(algo)}-{_slug(task)}"
        with self._tx() as conn:  # holding the write lock, so a free id stays free
            run_id = f"{prefix}-{secrets.token_hex(2)}"
            while conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                run_id = f"{prefix}-{secrets.token_hex(2)}"
            conn.execute("INSERT INTO runs (id, created_at, updated_at, task, algo, reward_source,"
                         " status, config_json, name) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                         (run_id, _utc_now(), time.time(), task, algo, reward_source,
                          config_json, name))
        (self.runs_dir / run_id).mkdir(parents=True, exist_ok=True)
        log.debug("created run %s", run_id)
        return run_id

    def log_step(self, run_id: str, step: int, metrics: dict[str, float],
                 samples: Iterable[dict] = ()) -> None:
        """Store a step's metrics and samples and advance `steps_done`, in one transaction.
        Values must be real numbers (else ValueError naming the key); nan/inf are kept. A `step`
        key in `metrics` is skipped (it is the step column). Logging a step again replaces it."""
        step = int(step)
        values = {k: _as_float(k, v) for k, v in metrics.items() if k != "step"}
        sample_rows = []
        for idx, sample in enumerate(samples):
            extra = {k: v for k, v in sample.items() if k not in _SAMPLE_FIELDS}
            reward, true_reward = sample.get("reward"), sample.get("true_reward")
            sample_rows.append((
                step, idx, sample.get("prompt"), sample.get("completion"),
                None if reward is None else _to_db(_as_float("reward", reward)),
                None if true_reward is None else _to_db(_as_float("true_reward", true_reward)),
                json.dumps(extra, default=_json_default) if extra else None))
        now = time.time()
        with self._tx() as conn:
            key = self._key(run_id)
            conn.executemany("INSERT OR IGNORE INTO metric_names (name) VALUES (?)",
                             [(k,) for k in values])
            ids = dict(conn.execute("SELECT name, id FROM metric_names"))  # a few dozen rows
            conn.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)", (key, step, now))
            conn.execute("DELETE FROM metrics WHERE run_key = ? AND step = ? AND name_id IN "
                         "(SELECT id FROM metric_names)", (key, step))
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                             [(key, ids[k], step, _to_db(v)) for k, v in values.items()])
            conn.execute("DELETE FROM samples WHERE run_key = ? AND step = ?", (key, step))
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [(key, *row) for row in sample_rows])
            conn.execute("UPDATE runs SET steps_done = MAX(steps_done, ?), updated_at = ? "
                         "WHERE key = ?", (step + 1, now, key))

    def log_event(self, run_id: str, step: int, kind: str, payload: dict) -> None:
        """Record a mid-run event (hyperparameter edit, note, ...) at `step`."""
        payload_json = json.dumps(payload, default=_json_default)
        with self._tx() as conn:
            conn.execute("INSERT INTO events (run_key, step, kind, payload_json, created_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (self._key(run_id), int(step), kind, payload_json, _utc_now()))

    def checkpoint_path(self, run_id: str, step: int) -> Path:
        """Where the checkpoint of `step` belongs: `runs/<id>/step-000123.safetensors`."""
        self._key(run_id)
        folder = self.runs_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"step-{int(step):06d}.safetensors"

    def record_checkpoint(self, run_id: str, step: int, path: str | os.PathLike[str]) -> None:
        """Note that a checkpoint of `step` was written to `path` (kept relative to the data
        folder when inside it, so the folder can be moved)."""
        path = Path(path)
        try:
            stored = path.resolve().relative_to(self.data_dir.resolve()).as_posix()
        except ValueError:
            stored = str(path.resolve())
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                         (self._key(run_id), int(step), stored))

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        with self._tx() as conn:
            self._key(run_id)
            conn.execute("UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                         (status, error, time.time(), run_id))

    def mark_stale_running(self, older_than_s: float) -> list[str]:
        """Mark 'failed' the 'running' runs with no write for `older_than_s` seconds; return ids.

        A run left 'running' by a crashed process looks just like one live in another process,
        so this is not done on open: call it when you know nothing should be that quiet (e.g.
        with a generous margin over the slowest step, or when the user asks to clean up).
        """
        cutoff = time.time() - older_than_s
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM runs WHERE status = 'running' AND updated_at < ?", (cutoff,))]
            conn.executemany(
                "UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                [(f"interrupted: no step logged for over {older_than_s:g} s "
                  "(the process running it probably ended)", i) for i in ids])
        if ids:
            log.info("marked %d stale running run(s) failed: %s", len(ids), ", ".join(ids))
        return ids

    def delete_run(self, run_id: str) -> None:
        """Delete a run's rows and its `runs/<id>/` folder."""
        with self._tx() as conn:
            conn.execute("DELETE FROM runs WHERE key = ?", (self._key(run_id),))
        folder = self.runs_dir / run_id
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("deleted run %s but could not remove %s: %s", run_id, folder, exc)

    # --- reading
    def list_runs(self) -> list[RunInfo]:
        """All runs, newest first."""
        rows = self._conn.execute(
            f"SELECT {_INFO} FROM runs ORDER BY created_at DESC, key DESC").fetchall()
        return [RunInfo(*row) for row in rows]

    def get_run(self, run_id: str) -> RunInfo:
        row = self._conn.execute(f"SELECT {_INFO} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(run_id, self.data_dir)
        return RunInfo(*row)

    def run_error(self, run_id: str) -> str | None:
        self._key(run_id)
        return self._conn.execute("SELECT error FROM runs WHERE id = ?", (run_id,)).fetchone()[0]

    def run_config(self, run_id: str) -> dict:
        row = self._conn.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(run_id, self.data_dir)
        return json.loads(row[0])

    def _names(self, key: int) -> list[tuple[int, str]]:
        return self._conn.execute(
            "SELECT id, name FROM metric_names n WHERE EXISTS (SELECT 1 FROM metrics m "
            "WHERE m.run_key = ? AND m.name_id = n.id) ORDER BY name", (key,)).fetchall()

    def metric_names(self, run_id: str) -> list[str]:
        """Names of the metrics this run has logged, sorted."""
        return [name for _, name in self._names(self._key(run_id))]

    def metric_series(self, run_id: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one metric as float64 arrays, by step; steps without it are absent."""
        key = self._key(run_id)
        if name == "step":
            rows = self._conn.execute("SELECT step, step FROM steps WHERE run_key = ? "
                                      "ORDER BY step", (key,)).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT m.step, m.value FROM metrics m JOIN metric_names n ON n.id = m.name_id "
                "WHERE m.run_key = ? AND n.name = ? ORDER BY m.step", (key, name)).fetchall()
        if not rows:
            return np.empty(0), np.empty(0)
        data = np.array(rows, dtype=np.float64)  # NULL (NaN) becomes nan here
        return data[:, 0], data[:, 1]

    def steps_after(self, run_id: str, step: int) -> list[tuple[int, dict[str, float]]]:
        """Logged steps greater than `step`, ascending, with their metrics (for polling a live run:
        pass the last step you have, or -1 for all)."""
        with self._tx("DEFERRED") as conn:
            key = self._key(run_id)
            out: dict[int, dict[str, float]] = {s: {} for (s,) in conn.execute(
                "SELECT step FROM steps WHERE run_key = ? AND step > ? ORDER BY step", (key, step))}
            # CROSS JOIN keeps the few names as the outer loop: one index range each, however long
            for s, name, value in conn.execute(
                    "SELECT m.step, n.name, m.value FROM metric_names n CROSS JOIN metrics m "
                    "ON m.run_key = ? AND m.name_id = n.id AND m.step > ?", (key, step)):
                out[s][name] = _from_db(value)
        return [(s, dict(sorted(m.items()))) for s, m in out.items()]

    def metrics_table(self, run_id: str) -> tuple[list[str], list[list[float]]]:
        """(columns, rows): `step` then the sorted metric names; one row per logged step; nan
        where a step lacks a metric."""
        with self._tx("DEFERRED") as conn:
            key = self._key(run_id)
            names = self._names(key)
            steps = [s for (s,) in conn.execute(
                "SELECT step FROM steps WHERE run_key = ? ORDER BY step", (key,))]
            row_of = {s: i for i, s in enumerate(steps)}
            rows: list[list[float]] = [[s] + [math.nan] * len(names) for s in steps]
            for col, (name_id, _) in enumerate(names, start=1):
                for s, value in conn.execute(
                        "SELECT step, value FROM metrics WHERE run_key = ? AND name_id = ?",
                        (key, name_id)):
                    rows[row_of[s]][col] = _from_db(value)
        return ["step"] + [name for _, name in names], rows

    def samples(self, run_id: str, step: int | None = None, limit: int = 50) -> list[dict]:
        """Samples of `step` (default: the latest step that has any), at most `limit`."""
        key = self._key(run_id)
        rows = self._conn.execute(
            "SELECT step, prompt, completion, reward, true_reward, extra_json FROM samples "
            "WHERE run_key = ?1 AND step = COALESCE(?2, (SELECT MAX(step) FROM samples "
            "WHERE run_key = ?1)) ORDER BY idx LIMIT ?3", (key, step, limit)).fetchall()
        out = []
        for s, prompt, completion, reward, true_reward, extra in rows:
            sample = {"step": s, "prompt": prompt, "completion": completion,
                      "reward": _from_db(reward), "true_reward": _from_db(true_reward)}
            if extra:
                sample.update(json.loads(extra))
            out.append(sample)
        return out

    def events(self, run_id: str) -> list[dict]:
        """Events in the order logged: dicts with step, kind, payload, created_at."""
        key = self._key(run_id)
        return [{"step": s, "kind": kind, "payload": json.loads(payload), "created_at": at}
                for s, kind, payload, at in self._conn.execute(
                    "SELECT step, kind, payload_json, created_at FROM events WHERE run_key = ? "
                    "ORDER BY id", (key,))]

    def checkpoints(self, run_id: str) -> list[tuple[int, Path]]:
        """(step, absolute path) of the recorded checkpoints, by step."""
        key = self._key(run_id)
        return [(s, self.data_dir / p) for s, p in self._conn.execute(
            "SELECT step, path FROM checkpoints WHERE run_key = ? ORDER BY step", (key,))]
