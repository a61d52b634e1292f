"""Rankings in and out as JSONL, in the formats people already use.

- pairwise: `{"prompt", "chosen", "rejected"}` and an optional `"margin"`, one pair per line. This
  is what TRL's RewardTrainer reads. A pair is stored as a ranking of two: chosen 1, rejected 2.
- listwise: `{"prompt", "responses", "ranks"}`, ranks 1 = best, equal ranks tie. TRL has no
  listwise format; this one keeps a whole ranking (and its ties) on one line.

Import detects the format line by line, so one file may mix both. Other keys are ignored (datasets
carry extra columns). A file with any bad line is refused whole, and the error names the line and
the problem; nothing is stored until every line has been read and checked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from core.reward_learning.rankings import RankingStore, StoredRanking, check_ranking

FORMATS = ("pairwise", "listwise")


def _text(value, key: str) -> str:
    if isinstance(value, list):
        raise ValueError(f'"{key}" is a list of messages (conversational format); give plain text')
    if not isinstance(value, str):
        raise ValueError(f'"{key}" must be a string, got {type(value).__name__}')
    return value


def _readable(prompt: str, responses) -> None:
    """Refuse text the tiny GPT cannot read (its tokenizer has lower-case letters, digits and
    some punctuation), so one bad line cannot make every later reward-model training fail."""
    from core.lm.model import GPTConfig
    from core.lm.tokenizer import TOKENIZER

    limit = GPTConfig.__dataclass_fields__["block_size"].default
    for key, text in (("prompt", prompt), *(("response", r) for r in responses)):
        try:
            TOKENIZER.encode(text)
        except ValueError as exc:
            bad = sorted({c for c in text if c not in TOKENIZER.chars})
            raise ValueError(f"{key} {text[:40]!r} has characters the model cannot read: "
                             f"{', '.join(map(repr, bad))} (lower-case it?)") from exc
        if len(prompt) + (len(text) if key == "response" else 0) + 2 > limit:
            raise ValueError(f"{key} {text[:40]!r}… is too long: prompt and response must fit "
                             f"{limit} characters")


def parse_line(obj) -> dict:
    """One decoded JSON line -> add()'s arguments (prompt, responses, ranks, margin)."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "prompt" not in obj:
        raise ValueError('no "prompt"')
    prompt = _text(obj["prompt"], "prompt")
    pairwise = "chosen" in obj or "rejected" in obj
    listwise = "responses" in obj or "ranks" in obj
    if pairwise and listwise:
        raise ValueError('both pairwise ("chosen"/"rejected") and listwise ("responses"/"ranks") '
                         "keys; use one format per line")
    if pairwise:
        for key in ("chosen", "rejected"):
            if key not in obj:
                raise ValueError(f'pairwise line without "{key}"')
        responses = [_text(obj["chosen"], "chosen"), _text(obj["rejected"], "rejected")]
        margin = obj.get("margin")
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))
                                   or not math.isfinite(margin)):
            raise ValueError(f'"margin" must be a finite number, got {margin!r}')
        _readable(prompt, responses)
        return {"prompt": prompt, "responses": responses, "ranks": [1, 2], "margin": margin}
    if listwise:
        for key in ("responses", "ranks"):
            if key not in obj:
                raise ValueError(f'listwise line without "{key}"')
        if obj["ranks"] is None:
            raise ValueError('"ranks" is null; give one rank per response, 1 = best')
        responses, ranks = check_ranking(obj["responses"], obj["ranks"])
        _readable(prompt, responses)
        return {"prompt": prompt, "responses": list(responses), "ranks": list(ranks)}
    raise ValueError('neither pairwise ("chosen", "rejected") nor listwise ("responses", "ranks")')


def read_rankings(path) -> list[dict]:
    """Every ranking in a JSONL file, or ValueError naming the first bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError as exc:
        raise ValueError(f"{path} is a folder; give a .jsonl file") from exc
    except FileNotFoundError as exc:
        raise ValueError(f"{path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            items.append(parse_line(obj))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    if not items:
        raise ValueError(f"{path} holds no rankings")
    return items


def import_rankings(store: RankingStore, path, task: str) -> list[int]:
    """Read the whole file, then store it in one transaction; returns the new ids."""
    items = read_rankings(path)
    policy = f"imported from {Path(path).name}"
    return store.add_many({**it, "task": task, "source": "imported", "policy": policy}
                          for it in items)


def to_lines(rankings: list[StoredRanking], fmt: str) -> list[dict]:
    """Rankings -> JSON objects of `fmt`. Not-rankable groups are left out; a pairwise export
    writes every strictly ordered pair (ties give none)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected pairwise or listwise")
    out = []
    for r in rankings:
        if r.ranks is None:
            continue
        if fmt == "listwise":
            out.append({"prompt": r.prompt, "responses": list(r.responses),
                        "ranks": list(r.ranks)})
            continue
        for i, a in enumerate(r.ranks):
            for j, b in enumerate(r.ranks):
                if a < b:
                    line = {"prompt": r.prompt, "chosen": r.responses[i],
                            "rejected": r.responses[j]}
                    if r.margin is not None:
                        line["margin"] = r.margin
                    out.append(line)
    return out


def export_rankings(store: RankingStore, path, fmt: str, task: str | None = None) -> int:
    """Write the store's rankings (of `task`, or all) to `path`; returns the lines written. The
    file appears whole or not at all (written beside it, then renamed)."""
    lines = to_lines(store.list(task=task), fmt)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name")
    from core.storage import atomic_write_text, describe

    try:
        atomic_write_text(path, "".join(json.dumps(x, ensure_ascii=False) + "\n"
                                        for x in lines))
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {describe(exc)}") from exc
    return len(lines)
