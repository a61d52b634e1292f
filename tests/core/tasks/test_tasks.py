"""core.tasks: corpora, prompts and the hidden true rewards of every registered task."""

import re

import numpy as np
import pytest

from core.lm.tokenizer import TOKENIZER
from core.tasks import TASKS, ArithmeticTask, Task, get_task

N_LINES = 3000


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[str]]:
    return {name: task.corpus(N_LINES, seed=0) for name, task in TASKS.items()}


def corpus_rewards(task: Task, lines: list[str], seed: int = 1) -> np.ndarray:
    """Reward of each corpus line's own completion, split as sample_prompts would cut it."""
    rng = np.random.default_rng(seed)
    pairs = [task.split_line(line, rng) for line in lines]
    return task.true_rewards([p for p, _ in pairs], [c for _, c in pairs])


# ------------------------------------------------------------------ registry and shared contract

def test_registry():
    assert set(TASKS) == {"sentiment", "arithmetic", "length"}
    for name, task in TASKS.items():
        assert isinstance(task, Task)
        assert get_task(name) is task and task.name == name
        assert task.description.endswith(".") and "\n" not in task.description
        lo, hi = task.reward_range
        assert lo < hi
    assert TASKS["sentiment"].max_new_tokens == 48
    with pytest.raises(ValueError, match="arithmetic, length, sentiment"):
        get_task("nope")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_corpus_is_deterministic_and_encodable(name, corpora):
    task = TASKS[name]
    lines = corpora[name]
    assert len(lines) == N_LINES
    assert task.corpus(N_LINES, seed=0) == lines
    assert task.corpus(200, seed=5) == task.corpus(200, seed=5)
    assert task.corpus(200, seed=5) != task.corpus(200, seed=6)
    for line in lines:
        assert "\n" not in line and line == line.strip()
        TOKENIZER.encode(line)  # raises on any character outside the shared vocabulary
    assert len(set(lines)) > N_LINES // 3  # varied, not a handful of sentences


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prompts_and_splits_fit(name, corpora):
    task = TASKS[name]
    prompts = task.sample_prompts(300, np.random.default_rng(3))
    assert prompts == task.sample_prompts(300, np.random.default_rng(3))
    assert len(prompts) == 300
    assert all(0 < len(p) <= task.max_prompt_chars for p in prompts)
    # prompts look like the beginnings of corpus lines
    if name == "arithmetic":
        assert all(re.fullmatch(r"\d{1,2}[+-]\d{1,2}=", p) for p in prompts)
    else:
        starts = {line[: len(p)] for line in corpora[name] for p in prompts[:50]}
        assert sum(p in starts for p in prompts[:50]) >= 45
        assert all(not p.endswith(" ") and p in starts for p in prompts[:50] if p in starts)
    rng = np.random.default_rng(0)
    for line in corpora[name]:
        prompt, completion = task.split_line(line, rng)
        assert prompt + completion == line
        assert 0 < len(prompt) <= task.max_prompt_chars
        assert 0 < len(completion) <= task.max_new_tokens - 1  # room for EOS


@pytest.mark.parametrize("name", sorted(TASKS))
def test_rewards_in_range_for_anything(name, corpora):
    task = TASKS[name]
    lo, hi = task.reward_range
    rng = np.random.default_rng(0)
    prompts = task.sample_prompts(200, rng)
    alphabet = np.array(list(TOKENIZER.chars))
    garbage = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 48)))) for _ in prompts]
    r = task.true_rewards(prompts, garbage)
    assert r.dtype == np.float32 and r.shape == (200,)
    assert np.all((r >= lo) & (r <= hi))
    r = corpus_rewards(task, corpora[name])
    assert np.all((r >= lo) & (r <= hi))
    with pytest.raises(ValueError):
        task.true_rewards(prompts, garbage[:-1])


# ------------------------------------------------------------------ sentiment

S = TASKS["sentiment"]


def s(completion: str, prompt: str = "the film was") -> float:
    return S.true_reward(prompt, completion)


def test_sentiment_orders_positive_neutral_negative():
    pos, neu, neg = s(" truly superb and wonderful."), s(" long."), s(" dull and awful.")
    assert pos > 0.8 and neu == 0.0 and neg < -0.5
    assert s(" good.") < s(" superb.") < s(" truly superb.") < s(" superb and wonderful.")
    assert s(" superb and wonderful.") < s(" stunning, superb and wonderful.") < 1.0
    assert s(" superb.") == pytest.approx(np.tanh(2 / 4))
    assert s(" dull, but the cast was superb.") == pytest.approx(np.tanh(1 / 4))
    assert S.true_reward("i", " loved the film.") == pytest.approx(np.tanh(2 / 4))


@pytest.mark.parametrize("completion", [
    " superb superb superb superb.",      # repetition, unseen pair
    " superb, superb and superb.",        # repetition with seen pairs
    " superb and the cast was superb.",   # repeated content word
    " xq zzkr plmo wvb.",                 # random letters
    " fantabulous and splendiferous.",    # unknown words
    " superb and wonderful",              # truncated, no final period
    " superb and",                        # truncated mid-sentence
    " superb. the cast was wonderful.",   # two sentences
    " superb .",                          # irregular spacing
    " wonderful superb.",                 # a pair the grammar never produces
    "",                                   # nothing
    " SUPERB!",                           # characters the grammar does not use
])
def test_sentiment_degenerate_text_scores_minus_one(completion):
    assert s(completion) == -1.0
    info = S.reward_info("the film was", completion)
    assert info["valid"] is False and info["reason"]


def test_sentiment_full_sentence_superb_superb():
    assert S.true_reward("", "superb superb superb superb.") == -1.0


def test_sentiment_base_level_is_balanced_or_slightly_negative(corpora):
    r = corpus_rewards(S, corpora["sentiment"])
    assert -0.12 <= r.mean() <= 0.05  # a sampling base model, with some invalid text, is lower
    assert (r > 0.5).mean() < 0.2  # high reward is rare before RL
    assert np.all(r > -1.0)  # every corpus sentence is valid


def test_sentiment_prompts_carry_no_sentiment():
    for p in S.sample_prompts(300, np.random.default_rng(0)):
        assert S.score(p.replace(",", " ,").split()) == 0.0
        assert len(p.split()) <= 3


# ------------------------------------------------------------------ arithmetic

A = TASKS["arithmetic"]


def test_arithmetic_examples():
    assert A.true_reward("17+25=", "42") == 1.0
    assert A.true_reward("17+25=", " 42 ") == 1.0
    assert A.true_reward("17+25=", "43") == 0.0
    assert A.true_reward("17+25=", "4x") == 0.0
    assert A.true_reward("17+25=", "042") == 0.0
    assert A.true_reward("17+25=", "") == 0.0
    assert A.true_reward("30-25=", "5") == 1.0
    assert A.true_reward("30-25=", "-5") == 0.0
    with pytest.raises(ValueError):
        A.true_reward("hello", "42")


def test_arithmetic_corpus_shape_and_wrong_share(corpora):
    lines = corpora["arithmetic"]
    wrong = 0
    for line in lines:
        prompt, answer = A.split_line(line, np.random.default_rng(0))
        assert prompt.endswith("=") and answer.isdigit()
        a, b = (int(x) for x in prompt[:-1].replace("-", "+").split("+"))
        assert 0 <= a <= 19 and 0 <= b <= 19
        off = int(answer) - A.answer(prompt)
        assert abs(off) <= 3
        wrong += off != 0
    assert abs(wrong / len(lines) - 0.3) < 0.03
    assert abs(corpus_rewards(A, lines).mean() - 0.7) < 0.03
    clean = ArithmeticTask(wrong_share=0.0).corpus(500, 0)
    assert corpus_rewards(A, clean).mean() == 1.0


def test_arithmetic_prompts_answerable():
    for p in A.sample_prompts(200, np.random.default_rng(0)):
        assert A.answer(p) >= 0 and len(str(A.answer(p))) < A.max_new_tokens


# ------------------------------------------------------------------ length

L = TASKS["length"]


def test_length_peaks_at_nine_words():
    nine = L.true_reward("a red fox", " runs over the hill at dawn.")
    assert nine == 1.0
    eight = L.true_reward("a red fox", " runs over the big hill.")
    ten = L.true_reward("a red fox", " runs quickly over the hill at dawn.")
    assert L.true_reward("a red fox", " runs over the hill.") == pytest.approx(np.exp(-1))
    three = L.true_reward("a fox", " runs.")
    assert eight == pytest.approx(np.exp(-0.5)) and ten == pytest.approx(np.exp(-0.5))
    assert three == pytest.approx(np.exp(-3))
    assert three < eight < nine


@pytest.mark.parametrize("completion", [
    " runs over the hill and the fox runs.",      # repeated content words
    " runs over the hill at dawn",                 # no final period
    " runs over the hill at dawn. a dog runs.",    # two sentences
    " zorp over the hill at dawn now.",            # unknown word
    " runs the hill over at dawn today.",          # unseen pairs
    " hill hill hill hill hill hill.",             # repetition
])
def test_length_garbage_scores_zero(completion):
    assert L.true_reward("a red fox", completion) == 0.0


def test_length_base_level_is_low_and_spread(corpora):
    lines = corpora["length"]
    counts = np.array([len(line.replace(",", "").split()) for line in lines])
    assert counts.min() == 3 and counts.max() >= 13
    assert (counts == 9).mean() < 0.05
    r = corpus_rewards(L, lines)
    assert 0.15 <= r.mean() <= 0.35
