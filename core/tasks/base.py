"""The task interface and the small grammar machinery the sentence tasks share.

A task is a source of prompts plus a hidden "true" reward. The base model is pretrained on the
task's ``corpus`` (each line wrapped in BOS ... EOS); RL then samples completions of
``sample_prompts`` and scores them with ``true_reward`` (directly, or via a reward model trained
from rankings, where ``true_reward`` is only what the plots show as ``reward/true_mean``).

The sentence tasks generate text from a weighted context-free grammar (``Grammar``) and judge text
with a ``SentenceChecker`` derived from the same grammar, so "valid" means exactly "looks like the
grammar's language locally": known words, word pairs the grammar can produce, one sentence that
ends in ".", canonical spacing and no repeated content word.
"""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

START, END = "<s>", "</s>"


class Task(ABC):
    """One task: prompts, a pretraining corpus and the hidden true reward.

    Subclasses set the class attributes and implement ``split_line``, ``corpus``,
    ``sample_prompts`` and ``true_reward``. Everything is deterministic given the seed / rng.
    """

    name: str = ""
    description: str = ""  # one sentence for the GUI
    max_new_tokens: int = 48  # default completion length in characters (tokens)
    reward_range: tuple[float, float] = (0.0, 1.0)
    max_prompt_chars: int = 16

    @abstractmethod
    def corpus(self, n_lines: int, seed: int) -> list[str]:
        """``n_lines`` full lines (prompt + completion, no newline) for pretraining."""

    @abstractmethod
    def split_line(self, line: str, rng: np.random.Generator) -> tuple[str, str]:
        """Split a corpus line into ``(prompt, completion)`` the way ``sample_prompts`` cuts."""

    @abstractmethod
    def sample_prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        """``n`` prompts (each at most ``max_prompt_chars`` characters)."""

    @abstractmethod
    def true_reward(self, prompt: str, completion: str) -> float:
        """Hidden reward of ``completion`` (decoded text after ``prompt``, up to EOS)."""

    def reward_info(self, prompt: str, completion: str) -> dict[str, object]:
        """The reward plus a short human-readable ``reason`` (for tooltips and logs)."""
        return {"reward": self.true_reward(prompt, completion), "reason": ""}

    def true_rewards(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """``true_reward`` for each pair, as a float32 array."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"{self.name}: {len(prompts)} prompts but {len(completions)} completions"
            )
        return np.fromiter(
            (self.true_reward(p, c) for p, c in zip(prompts, completions, strict=True)),
            dtype=np.float32,
            count=len(prompts),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------------------------
# Random numbers: a buffered stream of uniforms from a numpy Generator (fast per-choice draws)


class Uniforms:
    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self._rng = rng
        self._block = block
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(self._block).tolist()
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u


# --------------------------------------------------------------------------------------------
# Weighted context-free grammar

Rule = tuple[float, tuple[str, ...]]


def is_nonterminal(symbol: str) -> bool:
    return symbol[:1].isupper()


def alternatives(*words: str, weight: float = 1.0) -> list[Rule]:
    """One single-terminal rule per word (a lexical class)."""
    return [(weight, (w,)) for w in words]


class Grammar:
    """A weighted CFG without empty productions. Nonterminals start with an uppercase letter,
    terminals are single tokens (a lowercase word, ``,`` or ``.``)."""

    def __init__(self, rules: dict[str, list[Rule]], start: str = "S") -> None:
        for head, alts in rules.items():
            if not alts:
                raise ValueError(f"grammar: {head} has no productions")
            for _, body in alts:
                if not body:
                    raise ValueError(f"grammar: {head} has an empty production")
                for s in body:
                    if is_nonterminal(s) and s not in rules:
                        raise ValueError(f"grammar: {head} uses undefined {s}")
        self.rules = rules
        self.start = start
        self._cum: dict[str, tuple[list[float], list[tuple[str, ...]]]] = {}
        for head, alts in rules.items():
            total = float(sum(w for w, _ in alts))
            acc, cum = 0.0, []
            for w, _ in alts:
                acc += w / total
                cum.append(acc)
            cum[-1] = 1.0
            self._cum[head] = (cum, [b for _, b in alts])
        self.terminals = frozenset(
            s for alts in rules.values() for _, b in alts for s in b if not is_nonterminal(s)
        )
        self.bigrams = self._bigrams()

    def generate(self, u: Uniforms, symbol: str | None = None) -> list[str]:
        out: list[str] = []
        stack = [symbol or self.start]
        while stack:
            s = stack.pop()
            if not is_nonterminal(s):
                out.append(s)
                continue
            cum, bodies = self._cum[s]
            body = bodies[bisect.bisect_left(cum, u())]
            stack.extend(reversed(body))
        return out

    def _edges(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        first = {h: set() for h in self.rules}
        last = {h: set() for h in self.rules}

        def f(s: str) -> set[str]:
            return first[s] if is_nonterminal(s) else {s}

        def l_(s: str) -> set[str]:
            return last[s] if is_nonterminal(s) else {s}

        changed = True
        while changed:
            changed = False
            for head, alts in self.rules.items():
                for _, body in alts:
                    for target, src in ((first[head], f(body[0])), (last[head], l_(body[-1]))):
                        if not src <= target:
                            target |= src
                            changed = True
        return first, last

    def _bigrams(self) -> frozenset[tuple[str, str]]:
        """Every adjacent token pair the grammar can produce (exact: no empty productions)."""
        first, last = self._edges()

        def f(s: str) -> set[str]:
            return first[s] if is_nonterminal(s) else {s}

        def l_(s: str) -> set[str]:
            return last[s] if is_nonterminal(s) else {s}

        pairs: set[tuple[str, str]] = set()
        for alts in self.rules.values():
            for _, body in alts:
                for a, b in zip(body, body[1:], strict=False):
                    pairs.update((x, y) for x in l_(a) for y in f(b))
        pairs.update((START, y) for y in f(self.start))
        pairs.update((x, END) for x in l_(self.start))
        return frozenset(pairs)


# --------------------------------------------------------------------------------------------
# Text <-> tokens and the validity check

_TOKEN_RE = re.compile(r"[a-z']+|[^a-z' ]")


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    out = ""
    for t in tokens:
        if t in (",", ".") or not out:
            out += t
        else:
            out += " " + t
    return out


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    tokens: tuple[str, ...] = ()


class SentenceChecker:
    """Is a text one sentence of the grammar's language, locally?

    Valid means: only the grammar's characters; canonical spacing (single spaces, no space before
    "," or "."); every word in the grammar's vocabulary; every adjacent pair (including sentence
    start and end) producible by the grammar; exactly one ".", at the end; no content word (any
    word outside ``function_words``) used twice.
    """

    def __init__(self, grammar: Grammar, function_words: Iterable[str]) -> None:
        self.grammar = grammar
        self.vocab = grammar.terminals
        self.function_words = frozenset(function_words)
        self.chars = frozenset("".join(self.vocab)) | {" "}

    def check(self, text: str) -> Verdict:
        text = text.strip()
        if not text:
            return Verdict(False, "empty")
        bad = sorted(set(text) - self.chars)
        if bad:
            return Verdict(False, f"unexpected character {bad[0]!r}")
        if not text.endswith("."):
            return Verdict(False, "no final '.' (unfinished or truncated)")
        if text.count(".") != 1:
            return Verdict(False, "more than one sentence")
        tokens = tokenize(text)
        if detokenize(tokens) != text:
            return Verdict(False, "irregular spacing")
        unknown = [t for t in tokens if t not in self.vocab]
        if unknown:
            return Verdict(False, f"unknown word {unknown[0]!r}")
        seq = [START, *tokens, END]
        for a, b in zip(seq, seq[1:], strict=False):
            if (a, b) not in self.grammar.bigrams:
                return Verdict(False, f"unseen word pair {a!r} {b!r}")
        seen: set[str] = set()
        for t in tokens:
            if t in self.function_words:
                continue
            if t in seen:
                return Verdict(False, f"repeated word {t!r}")
            seen.add(t)
        return Verdict(True, "ok", tuple(tokens))


def split_words(
    line: str,
    rng: np.random.Generator,
    max_prompt_chars: int,
    max_completion_chars: int,
    allowed: frozenset[str] | None = None,
    max_words: int = 3,
) -> tuple[str, str] | None:
    """Cut ``line`` after its first k words (k uniform among the admissible 1..max_words).

    Admissible: the prompt fits ``max_prompt_chars``, the rest fits ``max_completion_chars`` and
    (if ``allowed`` is given) every prompt token is in ``allowed``. None when no k is admissible.
    """
    parts = line.split(" ")
    options: list[int] = []
    for k in range(1, min(max_words, len(parts) - 1) + 1):
        prompt = " ".join(parts[:k])
        if len(prompt) > max_prompt_chars or len(line) - len(prompt) > max_completion_chars:
            continue
        if allowed is not None and any(t not in allowed for t in tokenize(prompt)):
            break  # longer prompts contain the same forbidden token
        options.append(k)
    if not options:
        return None
    k = options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]
    prompt = " ".join(parts[:k])
    return prompt, line[len(prompt):]


# --------------------------------------------------------------------------------------------
# The grammar-sentence tasks' shared corpus / prompt plumbing


class SentenceTask(Task):
    """A task whose lines are grammar sentences cut after their first few words.

    Subclasses implement ``_lines`` (n lines, each with its prompt/completion cut, drawn from one
    rng) and ``_split`` (one line's cut, None when no cut is admissible). ``corpus`` and
    ``sample_prompts`` both go through ``_lines``, so for the same rng state the prompts are
    exactly the prefixes the base model was pretrained on.
    """

    max_line_chars: int
    checker: SentenceChecker

    @abstractmethod
    def _lines(self, n: int, rng: np.random.Generator) -> list[tuple[str, tuple[str, str]]]:
        """``n`` pairs ``(line, (prompt, completion))``."""

    @abstractmethod
    def _split(self, line: str, rng: np.random.Generator) -> tuple[str, str] | None:
        """``(prompt, completion)`` of ``line``, or None when no cut is admissible."""

    def _text(self, tokens: list[str]) -> str | None:
        """The line for generated ``tokens``; None if it repeats a content word or is too long."""
        function_words = self.checker.function_words
        content = [t for t in tokens if t not in function_words]
        if len(content) != len(set(content)):
            return None
        line = " ".join(tokens).replace(" ,", ",").replace(" .", ".")
        return line if len(line) <= self.max_line_chars else None

    def corpus(self, n_lines: int, seed: int) -> list[str]:
        return [line for line, _ in self._lines(n_lines, np.random.default_rng(seed))]

    def split_line(self, line: str, rng: np.random.Generator) -> tuple[str, str]:
        cut = self._split(line, rng)
        if cut is None:
            raise ValueError(f"{self.name}: no admissible prompt/completion split of {line!r}")
        return cut

    def sample_prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        return [cut[0] for _, cut in self._lines(n, rng)]
