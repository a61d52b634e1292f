"""``arithmetic``: finish ``17+5=`` with the right number (a verifiable reward, made for GRPO).

Lines are ``a+b=c`` or ``a-b=c`` with operands 0..19 (for ``-``, a >= b so c >= 0). A share
``wrong_share`` (default 30%) of the pretraining lines carry a wrong answer, off by 1..3 (never
negative), so a base model that learned the corpus perfectly answers right about 70% of the time
at temperature 1, and RL has room to push that to 100%.

Reward (hidden, in {0, 1})::

    1  if completion.strip() == str(a op b)   (the completion is the decoded text up to EOS)
    0  otherwise (wrong number, leading zeros, trailing text, garbage, empty)
"""

from __future__ import annotations

import re

import numpy as np

from .base import Task

_PROMPT_RE = re.compile(r"^(\d+)([+-])(\d+)=$")


class ArithmeticTask(Task):
    name = "arithmetic"
    description = (
        "Answer two-number sums and differences like 17+25= exactly; the reward is 1 for the "
        "right number and 0 otherwise."
    )
    max_new_tokens = 4
    reward_range = (0.0, 1.0)

    def __init__(self, max_operand: int = 19, wrong_share: float = 0.3, max_offset: int = 3):
        if not 0.0 <= wrong_share < 1.0:
            raise ValueError(f"arithmetic: wrong_share must be in [0, 1), got {wrong_share}")
        self.max_operand = max_operand
        self.wrong_share = wrong_share
        self.max_offset = max_offset

    @staticmethod
    def answer(prompt: str) -> int:
        """The right answer to a prompt like ``"17+25="``; ValueError for anything else."""
        m = _PROMPT_RE.match(prompt)
        if m is None:
            raise ValueError(f"arithmetic: not a prompt like '17+25=': {prompt!r}")
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return a + b if op == "+" else a - b

    def _operands(self, n: int, rng: np.random.Generator) -> list[tuple[int, str, int]]:
        ab = rng.integers(0, self.max_operand + 1, size=(n, 2))
        minus = rng.random(n) < 0.5
        out = []
        for (a, b), m in zip(ab.tolist(), minus.tolist(), strict=True):
            if m:
                a, b = max(a, b), min(a, b)
            out.append((a, "-" if m else "+", b))
        return out

    def corpus(self, n_lines: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        ops = self._operands(n_lines, rng)
        wrong = rng.random(n_lines) < self.wrong_share
        offsets = rng.integers(1, self.max_offset + 1, size=n_lines)
        signs = np.where(rng.random(n_lines) < 0.5, -1, 1)
        lines = []
        for (a, op, b), w, d, s in zip(ops, wrong.tolist(), offsets.tolist(), signs.tolist(),
                                       strict=True):
            c = a + b if op == "+" else a - b
            if w:
                c = c + s * d if c + s * d >= 0 else c + d
            lines.append(f"{a}{op}{b}={c}")
        return lines

    def split_line(self, line: str, rng: np.random.Generator) -> tuple[str, str]:
        i = line.find("=")
        if i < 0:
            raise ValueError(f"arithmetic: no '=' in {line!r}")
        return line[: i + 1], line[i + 1:]

    def sample_prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        return [f"{a}{op}{b}=" for a, op, b in self._operands(n, rng)]

    def true_reward(self, prompt: str, completion: str) -> float:
        return 1.0 if completion.strip() == str(self.answer(prompt)) else 0.0

    def reward_info(self, prompt: str, completion: str) -> dict[str, object]:
        right = self.answer(prompt)
        r = self.true_reward(prompt, completion)
        return {"reward": r, "reason": "right" if r else f"expected {right}", "valid": True}
