"""A simulated annotator: ranks a group of completions the way a noisy person would.

Its ranking is a draw from a Plackett-Luce model whose scores are true_reward / temperature: pick
the best with probability softmax(scores), then the next among the rest, and so on. Sampling from
Plackett-Luce is the same as sorting the scores after adding Gumbel noise (the Gumbel-max trick,
applied repeatedly), which is what `rank` does. Temperature 0 is a perfect annotator that sorts by
true reward, giving equal rewards tied ranks (competition ranking: 1, 2, 2, 4).
"""

from __future__ import annotations

import numpy as np


class SimulatedAnnotator:
    def __init__(self, temperature: float, rng: np.random.Generator):
        if not temperature >= 0:
            raise ValueError(f"annotator temperature must be >= 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.rng = rng

    def rank(self, true_rewards) -> np.ndarray:
        """true_rewards [n, K] -> ranks [n, K] (int, 1 = best)."""
        r = np.asarray(true_rewards, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] < 1:
            raise ValueError(f"expected true rewards of shape [n, K], got {r.shape}")
        if self.temperature == 0:
            # rank = 1 + number of items strictly better: ties share the better rank
            return 1 + (r[:, None, :] > r[:, :, None]).sum(-1)
        keys = r / self.temperature + self.rng.gumbel(size=r.shape)
        order = np.argsort(-keys, axis=1)
        ranks = np.empty_like(order)
        rows = np.arange(r.shape[0])[:, None]
        ranks[rows, order] = np.arange(1, r.shape[1] + 1)
        return ranks
