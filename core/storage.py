"""Files: the data folder (where it is, the SQLite base its stores share, atomic writes, the
names saved in it), and config files (TOML or JSON).

Every failure a person can cause or meet (a data folder that is a file, a read-only folder, a
damaged or locked database, a full disk) comes out of here as a ValueError whose message names
the path, what is wrong with it and, where there is one, the fix; the CLI prints it as one line.

Read-only opens never write: they create no folder and no file, take no write lock and run no
migration, so `runs` and `rankings list` work on a folder the user cannot write (docs/storage.md).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import platformdirs

ENV_VAR = "RLHF_EXPLORER_DATA"
# How long a writer waits for another one's transaction before "locked": a step's commit takes
# milliseconds, so 30 s means the other side is stuck, not busy.
LOCK_TIMEOUT_S = 30.0


def default_data_dir() -> Path:
    """`$RLHF_EXPLORER_DATA` if set (and not empty), else the platform's user data folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_path("rlhf-explorer"))


# A name saved in the data folder (a reward model's): a file name on every system, not hidden.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    """A reward model's name, as saved in the data folder (`reward_models/NAME.safetensors`)."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith((".json", ".part")):
        raise ValueError(f"bad reward-model name {name!r}: use 1-64 letters, digits, '_', '-' "
                         "or '.', starting with a letter or digit")
    return name


def check_folder(path: str | os.PathLike[str], create: bool = True,
                 what: str = "data folder") -> Path:
    """`path` as a usable folder: created when `create` (else it may be missing); ValueError when
    it is a file or cannot be made."""
    path = Path(path).expanduser()
    # the first part of the path that exists must be a folder (else nothing can ever be there)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        what_is = "is a file, not a folder" if existing == path else f"cannot exist: {existing} "\
            "is a file"
        raise ValueError(f"the {what} {path} {what_is}; give a folder (--data-dir DIR or "
                         "RLHF_EXPLORER_DATA), which is created if missing")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create the {what} {path}: {describe(exc)}") from exc
    return path


def resolve_data_dir(cli_value: str | None = None, create: bool = True) -> Path:
    """The data folder to use: the CLI flag wins over the env var over platformdirs."""
    if cli_value is not None and not str(cli_value).strip():
        # "" is a mistake (an unset shell variable), not "use the default"
        raise ValueError("the data folder is an empty name; give a folder (--data-dir DIR)")
    path = Path(cli_value).expanduser() if cli_value is not None else default_data_dir()
    return check_folder(path, create=create)


def describe(exc: OSError) -> str:
    """An OSError as a few words: 'permission denied', 'no space left on device', ..."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def connect(path: Path, read_only: bool, what: str) -> sqlite3.Connection:
    """A connection to the SQLite file `path` (autocommit; callers open transactions).

    Read-only: `mode=ro`, and `immutable=1` where the folder cannot be written (a WAL database
    otherwise needs to create its -shm file). The file is read once here, so a damaged one is
    refused now, with the fix, not at the first query.
    """
    if path.is_dir():
        raise ValueError(f"the {what} {path} is a folder, not a database file; move it aside")
    if read_only:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        if not writable(path.parent):
            uri += "&immutable=1"
    try:
        conn = (sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, isolation_level=None)
                if read_only else
                sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None))
    except sqlite3.Error as exc:
        raise database_error(path, exc, what) from exc
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        conn.close()
        raise database_error(path, exc, what) from exc
    return conn


def database_error(path: Path, exc: sqlite3.Error, what: str) -> ValueError:
    """The message for a database that cannot be used, with the fix for each kind of cause."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return ValueError(f"the {what} {path} is locked by another program (waited "
                          f"{LOCK_TIMEOUT_S:g} s); "
                          "close it, or wait for the run writing to it to end")
    if isinstance(exc, sqlite3.OperationalError) and ("readonly" in text or "read-only" in text
                                                      or "unable to open" in text):
        return ValueError(f"cannot write the {what} {path}: the folder or file is read-only; "
                          "use a folder you can write (--data-dir DIR)")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text
                                                   or "malformed" in text or "corrupt" in text):
        return ValueError(f"the {what} {path} is damaged ({text}); move it aside (a new one is "
                          "started) or restore it from a backup")
    if isinstance(exc, sqlite3.OperationalError) and "disk" in text:
        return ValueError(f"cannot write the {what} {path}: {text}; free some space")
    return ValueError(f"the {what} {path} cannot be used: {text}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None],
                 mode: int = 0o644) -> None:
    """Write `path` all at once: `write(tmp)` fills a temp file beside it, which is fsynced,
    given `mode` (less the umask) and renamed over `path`. A crash leaves the old file or the
    new one, never half of one."""
    path = Path(os.path.realpath(path))   # through a symlink: replace what it points at
    if path.exists() and not path.is_file():
        # a device or a FIFO (/dev/stdout, a pipe): it cannot be renamed over, only written
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder", str(path))
        write(path)
        return
    # The temp name keeps the extension: Qt picks an image format by it.
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class SQLiteStore:
    """One SQLite file in the data folder: the run store and the rankings store share this.

    Opening (read-only ones included: a missing file, or one killed before its schema was
    committed, reads as an empty store in memory), refusing a file of a newer schema, turning
    every database error into one line with its fix (`database_error`), transactions, close and
    `with`. A subclass names its file and itself (FILE, WHAT, SCHEMA_VERSION) and says how to
    read its schema version, create an empty schema and make an opened file ready."""

    FILE = ""
    WHAT = "store"
    SCHEMA_VERSION = 0

    def __init__(self, data_dir, read_only: bool = False):
        self.read_only = read_only
        self.data_dir = check_folder(data_dir, create=not read_only)
        self.path = self.data_dir / self.FILE
        self._prepare_folder()
        if read_only and not self.path.exists():   # nothing stored yet: an empty store
            self._open_empty()
            return
        self._conn = connect(self.path, read_only, self.WHAT)
        try:
            version = self._schema_version()
            if read_only and not version:   # created, but killed before its schema committed
                self._conn.close()
                self._open_empty()
                return
            if version > self.SCHEMA_VERSION:
                raise ValueError(f"{self.path} has schema version {version}, newer than this "
                                 f"rlhf-explorer understands ({self.SCHEMA_VERSION}); upgrade "
                                 "rlhf-explorer")
            self._ready(version)
        except sqlite3.Error as exc:
            self._conn.close()
            raise database_error(self.path, exc, self.WHAT) from exc
        except BaseException:
            self._conn.close()
            raise

    def _open_empty(self) -> None:
        self._conn = sqlite3.connect(":memory:", isolation_level=None)
        self._create_empty()

    # --- what a subclass says
    def _prepare_folder(self) -> None:
        """Folders the store keeps beside its file (made only when writable)."""

    def _schema_version(self) -> int:
        raise NotImplementedError

    def _create_empty(self) -> None:
        """The current schema, in the in-memory stand-in for a file not there yet."""
        raise NotImplementedError

    def _ready(self, version: int) -> None:
        """An opened file of `version` (0: new): create or migrate its schema when writable."""

    # --- plumbing
    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction. Writes take the write lock up front (IMMEDIATE) so that busy waiting
        applies; multi-query reads use DEFERRED to see one consistent snapshot. A database that
        is locked, read-only, full or damaged raises ValueError saying so (`database_error`)."""
        try:
            self._conn.execute(f"BEGIN {mode}")
        except sqlite3.OperationalError as exc:
            raise database_error(self.path, exc, self.WHAT) from exc
        try:
            yield self._conn
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                    exc, sqlite3.IntegrityError):
                raise database_error(self.path, exc, self.WHAT) from exc
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise database_error(self.path, exc, self.WHAT) from exc


# --- config files: TOML or JSON by extension (in any case), read into a dict of settings, or
# written all at once. They know nothing of RunConfig, which validates what they read
# (`RunConfig.load` / `RunConfig.save`).
CONFIG_FORMATS = {".toml": "toml", ".json": "json"}


def read_config_file(path: str | Path) -> dict:
    """The settings in `path`; ValueError names the file and what is wrong with it."""
    if not str(path).strip():
        raise ValueError("the config file name is empty; give a .toml or .json file")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a folder; give a .toml or .json file")
    kind = CONFIG_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"config file {path}: unknown format {path.suffix or '(none)'!r}; "
                         "use a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")   # Windows editors start with a BOM
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"config file {path} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {describe(exc)}") from None
    try:
        data = tomllib.loads(text) if kind == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config file {path} is not valid {kind.upper()}: {exc}") from None
    except RecursionError:
        raise ValueError(f"config file {path} is nested too deeply") from None
    if not isinstance(data, dict):
        kind = "null" if data is None else f"a {type(data).__name__}"
        raise ValueError(f"config file {path} must hold settings by name ({{\"lr\": 1e-4}} "
                         f"or lr = 1e-4), not {kind}")
    return data


def write_config_file(path: str | Path, data: dict) -> None:
    """TOML for a .toml path, JSON otherwise, written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".toml":
        import tomli_w

        atomic_write_text(path, tomli_w.dumps(data))
    else:
        atomic_write_text(path, json.dumps(data, indent=2))
