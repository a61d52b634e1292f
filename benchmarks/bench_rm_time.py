"""How long a reward model from 30 rankings takes to train, in this tree or another checkout:

    git worktree add /tmp/before f6bbf88      # landed main before issue 16
    /usr/bin/time -v .venv/bin/python benchmarks/bench_rm_time.py .          # and, in turn,
    /usr/bin/time -v .venv/bin/python benchmarks/bench_rm_time.py /tmp/before
    .venv/bin/python benchmarks/bench_rm_time.py . --round   # + a round's retraining, timed

Stores 30 groups of 4 base-model samples ranked by the simulated annotator (seed 0) and times
`core.reward_learning.feedback.train_from_store` with the tree's defaults (150 updates; today a
5-member ensemble
with negatives, standardised on base samples). --round then times what an iterated round does:
60 more updates from the trained model on those rankings plus 8 new ones of 5 responses, and the
standardisation again. Time the whole process, alternating the two trees a few times; the
script prints its own figures too.
"""

import sys
import tempfile
import time
from pathlib import Path

tree = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
sys.path.insert(0, str(tree))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.lm.checkpoints import default_checkpoint, load_checkpoint  # noqa: E402
from core.reward_learning.feedback import SimulatedFeedback, sample_groups, train_from_store  # noqa: E402
from core.reward_learning.rankings import RankingStore  # noqa: E402
from core.tasks import get_task  # noqa: E402

torch.set_num_threads(2)
task = get_task("sentiment")
base, _ = load_checkpoint(default_checkpoint("sentiment"))
folder = tempfile.mkdtemp()
rng = np.random.default_rng(0)
groups = sample_groups(base, task, task.sample_prompts(30, rng), 4, 48, 1.0,
                       torch.Generator().manual_seed(0), "base")
with RankingStore(folder) as store:
    SimulatedFeedback(0.1, rng, store).rank(groups)
t = time.perf_counter()
model, metrics, meta = train_from_store(folder, "sentiment", seed=0)
print(f"{tree}: trained in {time.perf_counter() - t:.2f} s "
      f"({getattr(model, 'n_members', 1)} member(s))")
if "--round" in sys.argv:
    from core.reward_learning.reward_training import (
        base_samples,
        train_reward_model,
        with_true_rewards,
    )

    new = SimulatedFeedback(0.1, rng).rank(sample_groups(
        base, task, task.sample_prompts(8, rng), 5, 48, 1.0, torch.Generator().manual_seed(1),
        "round"))
    with RankingStore(folder) as store:
        old = with_true_rewards([r.to_training() for r in store.list()], task)
    calibration = base_samples(base, task, 32, 4, 48, 7)
    t = time.perf_counter()
    train_reward_model(base, old + new, "bradley_terry", 60, 3e-4, 48, 1, init=model,
                       negatives=1.0, calibration=calibration)
    print(f"a round's retraining (60 updates, {len(old) + len(new)} rankings): "
          f"{time.perf_counter() - t:.2f} s")
