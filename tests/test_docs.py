"""docs/metrics.md lists every metric the trainer emits, so no curve is left unexplained."""

import re
from pathlib import Path

import pytest

from core.config import RunConfig
from core.rl.trainer import Trainer, default_checkpoint

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
SMALL = dict(prompts_per_step=2, group_size=2, steps=1, samples_per_step=1, threads=1)


def documented() -> set[str]:
    return set(re.findall(r"`([a-z_]+(?:/[a-z_0-9]+)?)`", DOC.read_text()))


@pytest.mark.skipif(not default_checkpoint("sentiment").exists(), reason="no base model")
@pytest.mark.parametrize("algo", ["reinforce", "kl_penalty", "ppo", "grpo", "dpo"])
def test_every_emitted_metric_is_documented(algo):
    few = {"dpo_rankings": 8, "rm_k": 3} if algo == "dpo" else {}   # DPO ranks at start
    names = set(Trainer(RunConfig.for_algo(algo, **SMALL, **few)).step().metrics)
    missing = sorted(names - documented())
    assert not missing, f"add to docs/metrics.md: {missing}"


def test_reward_model_metrics_are_documented():
    assert {"rm/accuracy", "rm/true_accuracy", "rm/loss", "rm/rankings",
            "rm/train_loss"} <= documented()


def test_every_test_the_promises_table_names_exists():
    root = DOC.parents[1]
    text = (root / "docs" / "promises.md").read_text()
    named = re.findall(r"`tests/((?:\w+/)*test_\w+\.py)(?:::(\w+))?`", text)
    assert len(named) > 20
    for filename, function in named:
        path = root / "tests" / filename
        assert path.exists(), f"docs/promises.md names a missing {filename}"
        if function:
            assert f"def {function}(" in path.read_text(), f"{filename}::{function} is gone"
    assert "docs/promises.md" in (root / "README.md").read_text()


def test_the_design_map_names_every_folder_and_every_folder_it_names_exists():
    root = DOC.parents[1]
    text = (root / "docs" / "design.md").read_text()
    table = text[text.index("### The map"):]
    named = set(re.findall(r"^\| `([\w/]+)/` \|", table, re.M))
    assert {"core", "core/lm", "explorer/cli", "tests"} <= named
    for folder in named:
        assert (root / folder).is_dir(), f"docs/design.md's map names a missing {folder}/"
    for top in ("core", "explorer"):
        for folder in (root / top).rglob("*"):
            if folder.is_dir() and (folder / "__init__.py").exists():
                rel = folder.relative_to(root).as_posix()
                assert rel in named, f"add {rel}/ to docs/design.md's map"
