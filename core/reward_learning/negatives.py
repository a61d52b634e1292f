"""Negatives for free: mangled copies of ranked responses, each worse than the response it came
from (issue 16, "Learning from few rankings" in docs/human_feedback.md).

A few dozen rankings of a base model's samples are nearly all well-formed text, so they say
nothing about broken text, and RL on a reward model trained on them finds broken text its features
happen to like ("sweet and sweet.", "pointlcint", "aw ful", a sentence cut off). Each mangle below
is one of those breakages, applied to one response:

- `garble`: one word's letters changed (a letter dropped, doubled, swapped with the next, replaced,
  or a space put inside the word);
- `repeat`: a word said again ("... sweet and sweet.", "... very very good.");
- `truncate`: the end cut off, final "." included.

The pair (response, mangled copy) is read as "the person prefers the response". That assumes a
person always ranks a response above a copy of it with a typo, a repeated word or its end cut off,
whatever their taste; a person who likes broken text is not served by these negatives (turn them
off: `rm_negatives=0`).

The functions here are pure (text in, text out, numpy's Generator for the choices); the reward
model's training adds the pairs (`core.reward_learning.reward_training.train_reward_model`).
"""

from __future__ import annotations

import numpy as np

KINDS = ("garble", "repeat", "truncate")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of letters in `text`."""
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isalpha() and start is None:
            start = i
        elif not ch.isalpha() and start is not None:
            spans.append((start, i))
            start = None
    return spans


def garble(text: str, rng: np.random.Generator) -> str | None:
    """One word of two or more letters changed in one place; None if `text` has no such word."""
    spans = [(a, b) for a, b in _words(text) if b - a >= 2]
    if not spans:
        return None
    a, b = spans[rng.integers(len(spans))]
    word = text[a:b]
    i = int(rng.integers(len(word)))
    op = int(rng.integers(5))
    if op == 0:                                   # a letter dropped
        new = word[:i] + word[i + 1:]
    elif op == 1:                                 # a letter doubled
        new = word[:i] + word[i] + word[i:]
    elif op == 2 and i < len(word) - 1:           # two letters swapped
        new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    elif op == 3 and 0 < i:                       # a space inside the word ("aw ful")
        new = word[:i] + " " + word[i:]
    else:                                         # a letter replaced by another
        other = [c for c in _LETTERS if c != word[i]]
        new = word[:i] + other[int(rng.integers(len(other)))] + word[i + 1:]
    if new == word:
        return None
    return text[:a] + new + text[b:]


def repeat(text: str, rng: np.random.Generator) -> str | None:
    """One word said twice: right after itself ("very very"), or appended as "and WORD" before
    the final "." ("sweet and sweet."); None if `text` has no word."""
    spans = _words(text)
    if not spans:
        return None
    a, b = spans[rng.integers(len(spans))]
    word = text[a:b]
    stripped = text.rstrip()
    if stripped.endswith(".") and rng.random() < 0.5:
        return stripped[:-1].rstrip() + f" and {word}." + text[len(stripped):]
    return text[:b] + " " + word + text[b:]


def truncate(text: str, rng: np.random.Generator) -> str | None:
    """The end cut off, at a random point in the second half, with no final "."; None if
    `text` is too short to lose anything but its last character."""
    body = text.rstrip()
    if len(body) < 4:
        return None
    cut = int(rng.integers(len(body) // 2, len(body) - 1))
    out = body[:cut].rstrip()
    return out if out and out != body else None


_MANGLERS = {"garble": garble, "repeat": repeat, "truncate": truncate}


def mangle(text: str, rng: np.random.Generator, kind: str | None = None) -> str | None:
    """A mangled copy of `text` (the kind given, or one at random, trying the others when it
    cannot apply); None when no kind changes `text`."""
    kinds = [kind] if kind is not None else list(rng.permutation(KINDS))
    for k in kinds:
        if k not in _MANGLERS:
            raise ValueError(f"unknown mangle {k!r}; expected one of {', '.join(KINDS)}")
        out = _MANGLERS[k](text, rng)
        if out is not None and out != text:
            return out
    return None


def negative_pairs(prompts_responses, per_response: int,
                   rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(prompt, response, mangled copy) for each (prompt, response) given, `per_response` times
    (each a fresh mangle); responses that cannot be mangled are left out."""
    out = []
    for prompt, response in prompts_responses:
        for _ in range(per_response):
            worse = mangle(response, rng)
            if worse is not None:
                out.append((prompt, response, worse))
    return out
