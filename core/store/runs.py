"""Run storage: config, per-step metrics, samples, events and checkpoints of RL runs in SQLite.

One data folder (`core.storage.resolve_data_dir`) holds `runs.db` and `runs/<run id>/`
(checkpoints, files); docs/storage.md describes the layout. Durability: WAL mode with
`synchronous=FULL`; `log_step` writes a step's metrics, samples and the run's `steps_done` in ONE
transaction, so a crash loses at most the step in flight. A run whose process ended without a
final status (SIGKILL, a crash) shows as `interrupted`: see core/store/run_lock.py.

`RunStore(dir, read_only=True)` never writes (no folder, file, lock or migration): the CLI's
read-only commands use it, so they work on a folder the user cannot write.

Threads and processes: a `RunStore` owns one SQLite connection, usable only from the thread that
opened it (sqlite3's `check_same_thread`), so every thread or process makes its own `RunStore` on
the same folder: typically one writer (the training worker) and readers (the GUI). WAL lets
readers go on while the writer commits; writers take the lock up front (`BEGIN IMMEDIATE`) and
wait up to 30 s for one another instead of failing with "database is locked".

Schema: core/store/runs_schema.py; `migrate` upgrades older files. Child tables
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
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.storage import (  # noqa: F401
    ENV_VAR,
    check_folder,
    connect,
    default_data_dir,
    resolve_data_dir,  # noqa: F401
)
from core.store import run_lock
from core.store.runs_read import RunInfo, RunReader, UnknownRun, _from_db  # noqa: F401
from core.store.runs_schema import (  # noqa: F401  (DB_NAME: where callers find it)
    DB_NAME,
    SCHEMA_VERSION,
    STATUSES,
    rename_metric,  # noqa: F401  (for migrations and tests)
)
from core.store.runs_schema import migrate as _migrate

log = logging.getLogger(__name__)

_SAMPLE_FIELDS = ("prompt", "completion", "reward", "true_reward")


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(text).lower()).strip("_") or "x"


def _free_id(conn: sqlite3.Connection, table: str, prefix: str) -> str:
    """`prefix` plus a random suffix no row of `table` has (call it holding the write lock)."""
    new = f"{prefix}-{secrets.token_hex(2)}"
    while conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (new,)).fetchone():
        new = f"{prefix}-{secrets.token_hex(2)}"
    return new


def _as_float(key: object, value: object) -> float:
    if not isinstance(key, str) or not key:
        raise ValueError(f"metric names must be non-empty strings, got {key!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"metric {key!r} must be a real number, got {type(value).__name__} "
                         f"{value!r:.60}")
    return float(value)


def _to_db(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _json_default(obj: Any) -> Any:
    """Events may carry numpy/torch scalars or other odd values: keep them readable."""
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


class RunStore(RunReader):
    """The run store in `data_dir` (created if needed): `RunReader`'s reads, and the writes.
    One instance per thread; see module doc."""

    def _ready(self, version: int) -> None:
        self._conn.execute("PRAGMA foreign_keys=ON")
        if not self.read_only:
            self.migrate()
            self.mark_interrupted()

    def close(self) -> None:
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()
        super().close()

    def __enter__(self) -> RunStore:
        return self

    def migrate(self) -> int:
        """Bring the file to SCHEMA_VERSION (idempotent; run on open) and return the version."""
        _migrate(self._conn, self.path)
        return SCHEMA_VERSION

    def mark_interrupted(self) -> list[str]:
        """Record as 'interrupted' the 'running' runs whose process has ended; return their ids.
        Runs on every writable open."""
        running = [r[0] for r in self._conn.execute(
            "SELECT id FROM runs WHERE status = 'running'")]
        dead = [i for i in running if not self._alive(i)]
        if dead:
            with self._tx() as conn:
                conn.executemany(
                    "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? "
                    "AND status = 'running'",
                    [("interrupted: the process running it ended without finishing (killed or "
                      "crashed); its finished steps are kept", i) for i in dead])
            log.info("marked %d run(s) interrupted: %s", len(dead), ", ".join(dead))
        return dead

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
            run_id = _free_id(conn, "runs", prefix)
            # The lock exists before the row does: no open can see this run 'running' unlocked.
            self.hold(run_id)
            conn.execute("INSERT INTO runs (id, created_at, updated_at, task, algo, reward_source,"
                         " status, config_json, name) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                         (run_id, _utc_now(), time.time(), task, algo, reward_source,
                          config_json, name))
        log.debug("created run %s", run_id)
        return run_id

    def hold(self, run_id: str) -> None:
        """Take `run_id`'s lock for this process until `finish_run` (a new run, or a resume)."""
        if run_id not in self._locks:
            folder = self.runs_dir / run_id
            folder.mkdir(parents=True, exist_ok=True)
            self._locks[run_id] = run_lock.RunLock(folder / run_lock.LOCK_NAME)

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
        if status != "running" and run_id in self._locks:
            self._locks.pop(run_id).release()

    # --- sweeps (core/sweeps/spec.py): a sweep is a spec and a set of tagged, ordinary runs
    def create_sweep(self, name: str, spec: dict) -> str:
        """Record a new 'running' sweep and return its id, e.g. `20261206-193000-kl_vs_clip-3f2a`;
        this process holds its lock (`sweeps/<id>/.lock`) until `finish_sweep`."""
        prefix = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"
        with self._tx() as conn:
            sweep_id = _free_id(conn, "sweeps", prefix)
            self.hold_sweep(sweep_id)
            conn.execute("INSERT INTO sweeps (id, created_at, name, spec_json, status, updated_at)"
                         " VALUES (?, ?, ?, ?, 'running', ?)",
                         (sweep_id, _utc_now(), name, json.dumps(spec), time.time()))
        return sweep_id

    def hold_sweep(self, sweep_id: str) -> None:
        key = f"sweep:{sweep_id}"
        if key not in self._locks:
            folder = self.sweep_dir(sweep_id)
            folder.mkdir(parents=True, exist_ok=True)
            self._locks[key] = run_lock.RunLock(folder / run_lock.LOCK_NAME)

    def tag_run(self, sweep_id: str, run_id: str, label: str, seed: int) -> None:
        """Mark `run_id` as the trial (`label`, `seed`) of `sweep_id` (replacing an older run
        of that trial, which stays in the store untagged)."""
        with self._tx() as conn:
            # (sweep, label, seed) is the key: a newer run of the trial replaces the older's tag
            conn.execute("INSERT OR REPLACE INTO sweep_runs VALUES (?, ?, ?, ?)",
                         (self._sweep_key(sweep_id), self._key(run_id), label, int(seed)))

    def finish_sweep(self, sweep_id: str, status: str) -> None:
        with self._tx() as conn:
            self._sweep_key(sweep_id)
            conn.execute("UPDATE sweeps SET status = ?, updated_at = ? WHERE id = ?",
                         (status, time.time(), sweep_id))
        if status != "running" and f"sweep:{sweep_id}" in self._locks:
            self._locks.pop(f"sweep:{sweep_id}").release()

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

    def copy_history(self, source: str, target: str, before_step: int) -> None:
        """Copy `source`'s steps below `before_step` (metrics, samples, events) into `target`,
        so a fork's plots start where its parent's do."""
        with self._tx() as conn:
            src, dst = self._key(source), self._key(target)
            for table, cols in (("steps", "step, created_at"),
                                ("metrics", "name_id, step, value"),
                                ("samples", "step, idx, prompt, completion, reward, true_reward, "
                                            "extra_json")):
                conn.execute(f"INSERT INTO {table} (run_key, {cols}) SELECT ?, {cols} FROM "
                             f"{table} WHERE run_key = ? AND step < ?", (dst, src, before_step))
            conn.execute("INSERT INTO events (run_key, step, kind, payload_json, created_at) "
                         "SELECT ?, step, kind, payload_json, created_at FROM events WHERE "
                         "run_key = ? AND step < ? ORDER BY id", (dst, src, before_step))
            conn.execute("UPDATE runs SET steps_done = (SELECT COUNT(*) FROM steps WHERE "
                         "run_key = ?) WHERE key = ?", (dst, dst))

    def reopen_run(self, run_id: str, keep_steps: int, config: dict) -> None:
        """Make `run_id` 'running' again from `keep_steps` steps (a resume): later steps, their
        samples and events, and later checkpoints are deleted, in one transaction."""
        if self._alive(run_id):
            raise ValueError(f"run {run_id} is still running; stop it before resuming it")
        self.hold(run_id)
        gone = [p for s, p in self.checkpoints(run_id) if s > keep_steps]
        with self._tx() as conn:
            key = self._key(run_id)
            for table in ("steps", "metrics", "samples", "events"):
                conn.execute(f"DELETE FROM {table} WHERE run_key = ? AND step >= ?",
                             (key, keep_steps))
            conn.execute("DELETE FROM checkpoints WHERE run_key = ? AND step > ?",
                         (key, keep_steps))
            conn.execute("UPDATE runs SET status = 'running', error = NULL, steps_done = ?, "
                         "config_json = ?, updated_at = ? WHERE key = ?",
                         (keep_steps, json.dumps(config), time.time(), key))
        from core.store.train_state import state_path

        for path in gone:   # after the commit: a crash before it leaves every file in use
            path.unlink(missing_ok=True)
            state_path(path).unlink(missing_ok=True)

