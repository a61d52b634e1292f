"""Fuzzing the three doors user input comes in by: config files, `--set`, rankings imports.

Whatever hypothesis throws at them, each either accepts the input (and the result passes
validation) or refuses it with a ValueError, which the CLI prints as one line; nothing else may
escape, and a refused import leaves the store unchanged.
"""

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import FIELDS, RunConfig
from core.reward_learning.rankings import RankingStore
from core.reward_learning.rankings_io import import_rankings
from explorer.cli.commands import build_config
from explorer.cli.errors import UsageError

# The suite's 150 examples take seconds; FUZZ_EXAMPLES=2000 hunts longer (2000 found nothing).
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

names = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=12))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5),
                                                                       inner, max_size=3)),
                      max_leaves=6)


def accepted_or_refused(load):
    try:
        cfg = load()
    except (ValueError, UsageError):
        return None
    assert isinstance(cfg, RunConfig)
    RunConfig(**cfg.to_dict())   # what was accepted passes validation again
    return cfg


@FUZZ
@given(data=st.one_of(st.dictionaries(names, values, max_size=6), values))   # any JSON at all
def test_config_files_are_accepted_or_refused_in_one_line(tmp_path, data):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data, allow_nan=True))
    accepted_or_refused(lambda: RunConfig.load(path))


@FUZZ
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".toml", ".json", ".TOML"]))
def test_config_files_of_any_bytes_are_refused_in_one_line(tmp_path, raw, suffix):
    path = tmp_path / f"c{suffix}"
    path.write_bytes(raw)
    accepted_or_refused(lambda: RunConfig.load(path))


class Args:
    def __init__(self, sets):
        self.config, self.set = None, sets
        self.task = self.algo = self.steps = self.seed = self.device = None


@FUZZ
@given(sets=st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}={v}", names, st.one_of(
        st.text(max_size=12), st.floats().map(repr), st.integers().map(str),
        st.sampled_from(["nan", "inf", "-inf", "1e309", "true", "0x10", " 3 ", ""]))),
    st.text(max_size=15)), max_size=4))
def test_set_values_are_accepted_or_refused_in_one_line(sets):
    cfg = accepted_or_refused(lambda: build_config(Args(sets)))
    if cfg is not None:
        for f in FIELDS:
            value = getattr(cfg, f)
            assert not (isinstance(value, float) and not math.isfinite(value)), f


line_values = st.one_of(scalars, st.lists(st.one_of(st.text(max_size=8), st.integers(-3, 9),
                                                    st.floats()), max_size=5))
keys = st.sampled_from(["prompt", "chosen", "rejected", "margin", "responses", "ranks", "x"])


texts = st.text(max_size=25)
pairwise = st.builds(lambda p, c, r: {"prompt": p, "chosen": c, "rejected": r},
                     texts, texts, texts)
listwise = st.integers(2, 5).flatmap(lambda k: st.builds(
    lambda p, rs, ks: {"prompt": p, "responses": rs, "ranks": ks}, texts,
    st.lists(texts, min_size=k, max_size=k), st.lists(st.integers(0, k + 1), min_size=k,
                                                       max_size=k)))


@FUZZ
@given(lines=st.lists(st.one_of(
    st.dictionaries(keys, line_values, max_size=5).map(lambda d: json.dumps(d, allow_nan=True)),
    pairwise.map(json.dumps), listwise.map(json.dumps),
    st.text(max_size=30)), min_size=1, max_size=4))
def test_rankings_imports_are_all_or_nothing(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("rankings")
    path = folder / "in.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    with RankingStore(folder) as store:
        try:
            ids = import_rankings(store, path, "sentiment")
        except ValueError:
            assert store.list() == []   # a refused file changes nothing
            return
        stored = store.list()
        assert [r.id for r in stored] == ids
        for r in stored:
            assert r.ranks is None or all(1 <= k <= len(r.responses) for k in r.ranks)


@pytest.mark.parametrize("text", ["lr = 1e-4\n[nested]\nx = 1\n", 'lr = "fast"\n'])
def test_toml_tables_and_strings_where_numbers_go_are_refused(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ValueError):
        RunConfig.load(path)
