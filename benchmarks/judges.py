"""Scripted persons for the sentiment task, whose tastes the project never optimised for.

    python benchmarks/judges.py calm   < groups.jsonl > rankings.jsonl   # a judge program
    python benchmarks/judges.py critic --seed 3

Each reads the groups a run asks about (one JSON object a line: group, prompt, responses) and
writes one ranking a line ({"group": ..., "ranks": [...]}, 1 = best, equal numbers tie), which is
the `feedback_by=command` protocol (docs/human_feedback.md). Imported, `JUDGES[name]` gives each
judge's taste, for rankings and blind win rates without a subprocess.

Like any person, every judge ranks broken text (what the task's sentence checker refuses: an
unknown or garbled word, a repeat, no final ".") below every real sentence, tied among itself.
Among real sentences:
- `calm` likes measured reviews: +1 for each downtoner (fairly, somewhat, rather) and neutral
  adjective (quiet, simple, familiar, ...), -1 for each intensifier (very, really, truly, so) and
  -0.5 for each strong word of either sign. The task's reward ignores most of this and rewards
  the opposite of the rest.
- `critic` is opposed to the task: it likes negative reviews (minus the task's sentiment sum).
- `annotator` is the simulated annotator's taste: the task's own true reward.
A judge ranks its taste plus Gumbel noise (`NOISE`, or `--noise`), as a person is not perfectly
consistent; `--noise 0` sorts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.tasks import get_task  # noqa: E402
from core.tasks.sentiment import (  # noqa: E402
    DOWNTONERS,
    INTENSIFIERS,
    NEUTRAL_ADJ,
    STRONG_NEG,
    STRONG_POS,
)

_TASK = get_task("sentiment")


def real(prompt: str, response: str) -> tuple[str, ...] | None:
    """The sentence's words when it is a real sentence, else None."""
    verdict = _TASK.checker.check(prompt + response)
    return tuple(verdict.tokens) if verdict.valid else None


def calm(words) -> float:
    strong = set(STRONG_POS) | set(STRONG_NEG)
    return float(sum((w in DOWNTONERS) + (w in NEUTRAL_ADJ) - (w in INTENSIFIERS)
                     - 0.5 * (w in strong) for w in words))


def critic(words) -> float:
    return -_TASK.score(words)


def annotator(words) -> float:
    return float(np.tanh(_TASK.score(words) / 4.0))


JUDGES = {"calm": calm, "critic": critic, "annotator": annotator}


def taste(name: str, prompt: str, response: str) -> float:
    """The judge's score of one response; -inf for broken text."""
    words = real(prompt, response)
    return -np.inf if words is None else JUDGES[name](words)


# Gumbel noise scale per judge, in its taste's units: the annotator's taste spans [-1, 1] and
# gets the simulated annotator's temperature (0.1); the others count words, and 0.3 of a word
# flips near-ties only.
NOISE = {"annotator": 0.1, "calm": 0.3, "critic": 0.3}


def rank(name: str, prompt: str, responses, rng: np.random.Generator,
         noise: float | None = None) -> list[int]:
    """1 = best; broken texts tie last; real ones by taste + Gumbel noise."""
    noise = NOISE[name] if noise is None else noise
    scores = np.array([taste(name, prompt, r) for r in responses], dtype=float)
    keys = scores + (noise * rng.gumbel(size=len(scores)) if noise > 0 else 0.0)
    keys[~np.isfinite(scores)] = -np.inf
    # competition ranking: 1 + how many are strictly better (broken ones tie)
    return [int(1 + (keys > k).sum()) for k in keys]


def prefers(name: str, prompt: str, a: str, b: str) -> float:
    """1 if the judge prefers a to b, 0 if b, 0.5 for a tie (blind, no noise)."""
    sa, sb = taste(name, prompt, a), taste(name, prompt, b)
    return 0.5 if sa == sb else float(sa > sb)


def command(name: str, seed: int) -> str:
    """The shell command that runs this judge as a `feedback_by=command` program."""
    import shlex

    return (f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "
            f"{name} --seed {seed}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("judge", choices=sorted(JUDGES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=None, help="default: the judge's own (NOISE)")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    for line in sys.stdin:
        if not line.strip():
            continue
        group = json.loads(line)
        ranks = rank(args.judge, group["prompt"], group["responses"], rng, args.noise)
        print(json.dumps({"group": group["group"], "ranks": ranks}), flush=True)


if __name__ == "__main__":
    main()
