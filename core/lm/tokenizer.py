"""One fixed character vocabulary shared by every task, so one checkpoint format fits all.

Ids: ``PAD=0``, ``BOS=1``, ``EOS=2``, then a space, ``a``-``z``, ``0``-``9`` and the punctuation
``. , ! ' + = - : ?`` in that order (49 ids). The order is part of the checkpoint format: never
reorder it; only append new characters at the end.

``encode`` adds no special ids; a pretraining line is ``[bos_id] + encode(line) + [eos_id]``.
``decode`` stops at the first EOS and drops PAD and BOS, so it turns a sampled completion straight
into the text that a task's reward reads.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS)
# Never reorder: the position of a character is its id in every stored checkpoint.
DEFAULT_CHARS: str = " " + string.ascii_lowercase + string.digits + ".,!'+=-:?"


class CharTokenizer:
    """Character-level tokenizer with a fixed vocabulary (specials first)."""

    def __init__(self, chars: str = DEFAULT_CHARS) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: duplicate characters in the vocabulary")
        self.chars: str = chars
        self.pad_id: int = 0
        self.bos_id: int = 1
        self.eos_id: int = 2
        self._stoi: dict[str, int] = {c: i + len(SPECIALS) for i, c in enumerate(chars)}
        self._itos: list[str] = list(SPECIALS) + list(chars)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``'s characters; no BOS/EOS added. Unknown characters raise ValueError."""
        try:
            return [self._stoi[c] for c in text]
        except KeyError:
            bad = sorted({c for c in text if c not in self._stoi})
            raise ValueError(
                f"CharTokenizer cannot encode {', '.join(repr(c) for c in bad)} in {text!r}; "
                f"allowed characters: {self.chars!r}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first EOS; PAD and BOS are dropped.

        Accepts any iterable of integers (list, numpy array, 1-D torch tensor).
        """
        out: list[str] = []
        n = self.vocab_size
        for raw in ids:
            i = int(raw)
            if i == self.eos_id:
                break
            if i == self.pad_id or i == self.bos_id:
                continue
            if not 0 <= i < n:
                raise ValueError(f"CharTokenizer.decode: id {i} is outside 0..{n - 1}")
            out.append(self._itos[i])
        return "".join(out)

    def is_encodable(self, text: str) -> bool:
        return all(c in self._stoi for c in text)


TOKENIZER = CharTokenizer()
"""The module-level default instance every task and checkpoint uses."""
