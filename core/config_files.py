"""Config files: TOML or JSON by extension (in any case), read into a dict of settings, or
written all at once. Knows nothing of RunConfig, which validates what it reads
(`RunConfig.load` / `RunConfig.save`)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

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
        from core.storage import describe

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
    from core.storage import atomic_write_text

    path = Path(path)
    if path.suffix.lower() == ".toml":
        import tomli_w

        atomic_write_text(path, tomli_w.dumps(data))
    else:
        atomic_write_text(path, json.dumps(data, indent=2))
