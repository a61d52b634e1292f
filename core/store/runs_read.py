"""The run store, reading: runs, metrics, samples, events, checkpoints, sweeps.

`RunReader` opens `runs.db` (`SQLiteStore`: a missing or half-made file reads as empty) and
offers every read; `core.store.runs.RunStore` is a RunReader that also writes. A read-only
store offers all of this, and never writes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.storage import SQLiteStore, check_folder
from core.store import run_lock
from core.store.runs_schema import DB_NAME, SCHEMA_VERSION, migrate, stored_version

_INFO = "id, created_at, task, algo, reward_source, status, steps_done, name"


class UnknownRun(KeyError, ValueError):
    """No run with this id in the store (a KeyError and a ValueError, for either kind of caller)."""

    def __init__(self, run_id: str, data_dir: Path | None = None):
        where = f" in {data_dir}" if data_dir is not None else ""
        self.run_id, self.message = run_id, (f"no run {run_id!r}{where}; list run ids with "
                                             "`rlhf-explorer runs`")
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


class UnknownSweep(KeyError, ValueError):
    def __init__(self, sweep_id: str, data_dir: Path | None = None):
        where = f" in {data_dir}" if data_dir is not None else ""
        self.message = f"no sweep {sweep_id!r}{where}; list sweep ids with `rlhf-explorer sweeps`"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SweepInfo:
    id: str
    created_at: str
    name: str
    status: str   # running, finished, stopped, failed (a trial failed), interrupted
    spec: dict


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its config's label, its seed, and the run."""
    label: str
    seed: int
    run: RunInfo


def safetensors_problem(path: Path) -> str | None:
    """None when `path` starts like a whole safetensors file (an 8-byte length, then that many
    bytes of JSON header, within the file), else what is wrong; reads only the header."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return "is empty or cut short"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100_000_000:
                return "is cut short or not a safetensors file"
            json.loads(f.read(n))
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except ValueError:
        return "has a damaged header"
    return None


def _from_db(value: float | None) -> float:
    return math.nan if value is None else float(value)


class RunReader(SQLiteStore):
    FILE, WHAT, SCHEMA_VERSION = DB_NAME, "run store", SCHEMA_VERSION

    def _prepare_folder(self) -> None:
        self.runs_dir = self.data_dir / "runs"
        self._locks: dict[str, run_lock.RunLock] = {}   # the runs and sweeps this one trains
        if not self.read_only:
            check_folder(self.runs_dir, what="runs folder")

    def _schema_version(self) -> int:
        return stored_version(self._conn)

    def _create_empty(self) -> None:
        migrate(self._conn, self.path)

    def _ready(self, version: int) -> None:
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _alive(self, run_id: str) -> bool:
        return run_id in self._locks or run_lock.is_held(self.runs_dir / run_id /
                                                         run_lock.LOCK_NAME)

    def _shown(self, row) -> RunInfo:
        """A row as a RunInfo; 'running' with nobody training it reads 'interrupted', also for a
        read-only store, which cannot record it."""
        info = RunInfo(*row)
        if info.status == "running" and not self._alive(info.id):
            return RunInfo(*row[:5], "interrupted", *row[6:])
        return info

    def _key(self, run_id: str) -> int:
        row = self._conn.execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(run_id, self.data_dir)
        return row[0]

    # --- reading
    def list_runs(self) -> list[RunInfo]:
        """All runs, newest first."""
        rows = self._conn.execute(
            f"SELECT {_INFO} FROM runs ORDER BY created_at DESC, key DESC").fetchall()
        return [self._shown(row) for row in rows]

    def get_run(self, run_id: str) -> RunInfo:
        row = self._conn.execute(f"SELECT {_INFO} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(run_id, self.data_dir)
        return self._shown(row)

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

    def change_mark(self) -> tuple:
        """Changes whenever a run or sweep is added, deleted or written (any process): a
        follower polls it to know when to re-read the lists."""
        return self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT MAX(updated_at) FROM runs), "
            "(SELECT COUNT(*) FROM sweeps), (SELECT MAX(updated_at) FROM sweeps)").fetchone()

    # --- sweeps
    def sweep_dir(self, sweep_id: str) -> Path:
        return self.data_dir / "sweeps" / sweep_id

    def _sweep_key(self, sweep_id: str) -> int:
        row = self._conn.execute("SELECT key FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise UnknownSweep(sweep_id, self.data_dir)
        return row[0]

    def _sweep_shown(self, row) -> SweepInfo:
        sweep_id, created, name, spec, status = row
        if status == "running" and not (f"sweep:{sweep_id}" in self._locks or run_lock.is_held(
                self.sweep_dir(sweep_id) / run_lock.LOCK_NAME)):
            status = "interrupted"   # its driver ended without a final status
        return SweepInfo(sweep_id, created, name, status, json.loads(spec))

    def list_sweeps(self) -> list[SweepInfo]:
        """All sweeps, newest first."""
        return [self._sweep_shown(r) for r in self._conn.execute(
            "SELECT id, created_at, name, spec_json, status FROM sweeps "
            "ORDER BY created_at DESC, key DESC")]

    def get_sweep(self, sweep_id: str) -> SweepInfo:
        row = self._conn.execute("SELECT id, created_at, name, spec_json, status FROM sweeps "
                                 "WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise UnknownSweep(sweep_id, self.data_dir)
        return self._sweep_shown(row)

    def trials(self, sweep_id: str) -> list[Trial]:
        """The sweep's runs, by label then seed."""
        key = self._sweep_key(sweep_id)
        rows = self._conn.execute(
            f"SELECT t.label, t.seed, {', '.join('r.' + c for c in _INFO.split(', '))} "
            "FROM sweep_runs t JOIN runs r ON r.key = t.run_key WHERE t.sweep_key = ? "
            "ORDER BY t.label, t.seed", (key,)).fetchall()
        return [Trial(label, seed, self._shown(rest)) for label, seed, *rest in rows]

    def run_tags(self) -> dict[str, tuple[str, str, int]]:
        """{run id: (sweep id, label, seed)} for every run that is a sweep's trial."""
        return {run: (sweep, label, seed) for run, sweep, label, seed in self._conn.execute(
            "SELECT r.id, s.id, t.label, t.seed FROM sweep_runs t JOIN runs r ON "
            "r.key = t.run_key JOIN sweeps s ON s.key = t.sweep_key")}

    def checkpoints(self, run_id: str) -> list[tuple[int, Path]]:
        """(step, absolute path) of the recorded checkpoints, by step."""
        key = self._key(run_id)
        return [(s, self.data_dir / p) for s, p in self._conn.execute(
            "SELECT step, path FROM checkpoints WHERE run_key = ? ORDER BY step", (key,))]

    def damage(self, run_id: str) -> str | None:
        """What is wrong with a run's files, or None: its folder gone, a checkpoint missing or
        not a safetensors file, its config unreadable. Cheap (a stat and a header read per
        checkpoint), so a list can show it for every run; never raises for a damaged run."""
        try:
            json.loads(self._conn.execute("SELECT config_json FROM runs WHERE id = ?",
                                          (run_id,)).fetchone()[0])
        except (TypeError, ValueError):
            return "its stored config is unreadable"
        checkpoints = self.checkpoints(run_id)
        if checkpoints and not (self.runs_dir / run_id).is_dir():
            return f"its folder {self.runs_dir / run_id} is missing"
        for step, path in checkpoints:
            problem = safetensors_problem(path)
            if problem:
                return f"the checkpoint of step {step} {problem}"
        return None
