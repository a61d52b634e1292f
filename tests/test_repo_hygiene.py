"""The README's quick start, CI and lint stay true together."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [line for b in blocks for line in b.splitlines() if line and not line.startswith("#")]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()[:2]
    assert len(commands) == 2
    assert commands[0].endswith("rlhf-explorer")
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, "`.ci/run` must run exactly the README's test command"


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
