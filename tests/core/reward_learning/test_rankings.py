"""The rankings store and its JSONL import/export: nothing acknowledged is lost, a bad file
changes nothing, and export then import gives the same rankings."""

import json
from pathlib import Path

import pytest

from core.reward_learning.rankings import RankingStore
from core.reward_learning.rankings_io import import_rankings, read_rankings, to_lines
from explorer.app import main

LISTWISE = {"prompt": "the film was", "responses": ["great .", "dull .", "fine ."],
            "ranks": [1, 3, 2]}
PAIRWISE = {"prompt": "the plot", "chosen": "superb .", "rejected": "bad .", "margin": 0.5}


def write_jsonl(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_a_ranking_survives_reopening_the_store(tmp_path):
    with RankingStore(tmp_path) as store:
        rid = store.add("sentiment", "p", ["a", "b", "c"], [2, 1, 2], "person", "base",
                        true=[0.1, 0.2, 0.3])
        store.add("sentiment", "q", ["x", "y"], None, "person", "run R step 3")
    # a fresh connection (another process, or the app after a crash) sees both, committed
    with RankingStore(tmp_path) as store:
        got = store.get(rid)
        assert (got.responses, got.ranks, got.source, got.true) == (
            ("a", "b", "c"), (2, 1, 2), "person", (0.1, 0.2, 0.3))
        assert store.counts("sentiment") == {"person": 1, "not_rankable": 1}
        assert [r.prompt for r in store.list(rankable_only=True)] == ["p"]


def test_edit_and_delete(tmp_path):
    with RankingStore(tmp_path) as store:
        rid = store.add("length", "p", ["a", "b"], [1, 2])
        store.update_ranks(rid, [2, 1])
        assert store.get(rid).ranks == (2, 1)
        store.update_ranks(rid, None)
        assert not store.get(rid).rankable
        with pytest.raises(ValueError, match="1..2"):
            store.update_ranks(rid, [1, 3])
        store.delete(rid)
        assert store.list() == []
        with pytest.raises(KeyError):
            store.delete(rid)


@pytest.mark.parametrize("ranks, problem", [
    ([1, 2], "2 ranks for 3 responses"), ([0, 1, 2], "1..3"), ([1, 2, 2.5], "1..3"),
    ("123", "list"), ([True, 1, 2], "1..3")])
def test_bad_ranks_are_refused(tmp_path, ranks, problem):
    with RankingStore(tmp_path) as store:
        with pytest.raises(ValueError, match=problem):
            store.add("sentiment", "p", ["a", "b", "c"], ranks)
        assert store.list() == []


def test_import_detects_the_format_line_by_line(tmp_path):
    items = read_rankings(write_jsonl(tmp_path / "mix.jsonl", [LISTWISE, "", PAIRWISE]))
    assert items[0]["ranks"] == [1, 3, 2]
    assert items[1] == {"prompt": "the plot", "responses": ["superb .", "bad ."],
                        "ranks": [1, 2], "margin": 0.5}


@pytest.mark.parametrize("line, problem", [
    ('{"prompt": "p", "chosen": "a"}', 'without "rejected"'),
    ('{"prompt": "p", "responses": ["a", "b"], "ranks": [1, 9]}', "1..2"),
    ('{"prompt": "p", "chosen": [{"role": "user"}], "rejected": "b"}', "conversational"),
    ('{"chosen": "a", "rejected": "b"}', 'no "prompt"'),
    ('{"prompt": "p", "text": "a"}', "neither pairwise"),
    ('[1, 2]', "JSON object"),
    ('{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}', "margin"),
    ('{"prompt": "p", "chosen": "a", "rejected": "b"', "not valid JSON"),
    ('{"prompt": "p", "responses": ["a", "b"], "ranks": null}', '"ranks" is null'),
    ('{"prompt": "The film", "chosen": "a", "rejected": "b"}', "cannot read: 'T'"),
    ('{"prompt": "p", "chosen": "' + "a" * 200 + '", "rejected": "b"}', "too long")])
def test_a_bad_file_is_refused_whole_naming_the_line(tmp_path, line, problem):
    with RankingStore(tmp_path) as store:
        store.add("sentiment", "kept", ["a", "b"], [1, 2])
        path = write_jsonl(tmp_path / "bad.jsonl", [LISTWISE, PAIRWISE, line])
        with pytest.raises(ValueError, match=problem) as err:
            import_rankings(store, path, "sentiment")
        assert "bad.jsonl:3:" in str(err.value)
        assert [r.prompt for r in store.list()] == ["kept"]  # nothing else stored


def test_export_then_import_gives_the_same_rankings(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    with RankingStore(src) as store:
        store.add("sentiment", "p1", ["a", "b", "c", "d"], [1, 2, 2, 4], "person")
        store.add("sentiment", "p2", ["x", "y"], [2, 1], "simulated")
        store.add("sentiment", "p3", ["u", "v"], None)  # not rankable: not exported
        before = [(r.prompt, r.responses, r.ranks) for r in store.list(rankable_only=True)]
    out = tmp_path / "out.jsonl"
    assert main(["rankings", "export", str(out), "--format", "listwise",
                 "--data-dir", str(src)]) == 0
    assert main(["rankings", "import", str(out), "--task", "sentiment",
                 "--data-dir", str(dst)]) == 0
    with RankingStore(dst) as store:
        after = [(r.prompt, r.responses, r.ranks) for r in store.list()]
        assert {r.source for r in store.list()} == {"imported"}
    assert after == before


def test_pairwise_export_writes_every_strict_pair(tmp_path):
    with RankingStore(tmp_path) as store:
        store.add("sentiment", "p", ["a", "b", "c"], [1, 2, 2])
        lines = to_lines(store.list(), "pairwise")
    assert lines == [{"prompt": "p", "chosen": "a", "rejected": "b"},
                     {"prompt": "p", "chosen": "a", "rejected": "c"}]  # b, c tie: no pair


def test_cli_refuses_a_bad_file_with_exit_2_and_one_line(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [LISTWISE, '{"prompt": "p"}'])
    assert main(["rankings", "import", str(bad), "--task", "sentiment",
                 "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.jsonl:2:" in err[0]
    assert main(["rankings", "import", str(tmp_path), "--task", "sentiment",
                 "--data-dir", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["rankings", "list", "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_acknowledged_ranking_survives_a_kill(tmp_path):
    """The window says "Saved #N" after add() returns; a process killed right after (SIGKILL: no
    clean-up, no atexit) loses nothing that was acknowledged."""
    import subprocess
    import sys

    child = (
        "import os, signal, sys\n"
        "from core.reward_learning.rankings import RankingStore\n"
        f"store = RankingStore({str(tmp_path)!r})\n"
        "for i in range(5):\n"
        "    rid = store.add('sentiment', f'p{i}', ['a', 'b'], [1, 2])\n"
        "    print('saved', rid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], timeout=60)
    assert out.returncode == -9
    acknowledged = [int(line.split()[1]) for line in out.stdout.splitlines()]
    with RankingStore(tmp_path) as store:
        assert [r.id for r in store.list()] == acknowledged == [1, 2, 3, 4, 5]
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_damaged_store_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "rankings.db").write_bytes(b"this is not sqlite" * 100)
    assert main(["rankings", "list", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rankings.db" in err[0]
    (tmp_path / "rankings.db").unlink()
    (tmp_path / "rankings.db").mkdir()
    assert main(["rankings", "list", "--data-dir", str(tmp_path)]) == 2


def test_a_version_1_store_is_migrated_whole_and_takes_judge_rankings(tmp_path):
    """Stores made before judge programs (schema 1: source CHECK without 'judge') open, keep
    every ranking and accept source "judge"."""
    import sqlite3

    conn = sqlite3.connect(tmp_path / "rankings.db")
    conn.executescript("""
        CREATE TABLE schema_version (version INTEGER);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE rankings (id INTEGER PRIMARY KEY, task TEXT NOT NULL, prompt TEXT NOT NULL,
            responses_json TEXT NOT NULL, ranks_json TEXT,
            source TEXT NOT NULL CHECK (source IN ('person', 'simulated', 'imported')),
            policy TEXT NOT NULL, created_at TEXT NOT NULL, updated_at REAL NOT NULL,
            margin REAL, true_json TEXT);
        CREATE INDEX rankings_by_task ON rankings (task, source);
        INSERT INTO rankings VALUES (7, 'sentiment', 'p', '["a", "b"]', '[2, 1]', 'person',
            'base', '2026-12-01T00:00:00Z', 0, NULL, NULL);
    """)
    conn.close()
    with RankingStore(tmp_path, read_only=True) as store:   # read-only: read as it is
        assert [(r.id, r.ranks) for r in store.list()] == [(7, (2, 1))]
    with RankingStore(tmp_path) as store:
        assert [(r.id, r.ranks, r.source) for r in store.list()] == [(7, (2, 1), "person")]
        store.add("sentiment", "q", ["x", "y"], [1, 2], "judge", "run 1 step 25")
        assert [r.source for r in store.list()] == ["person", "judge"]
        assert store._schema_version() == 2


def test_a_rankings_file_from_a_newer_version_is_refused_with_the_fix(tmp_path):
    import sqlite3

    with RankingStore(tmp_path) as store:
        store.add("sentiment", "p", ("a", "b"), (1, 2))
    conn = sqlite3.connect(tmp_path / "rankings.db")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    for read_only in (False, True):
        with pytest.raises(ValueError, match="schema version 99, newer .* upgrade"):
            RankingStore(tmp_path, read_only=read_only)
