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


def _project_imports() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its text (lazy imports count)."""
    import ast

    paths = {}
    for p in [*(ROOT / "core").rglob("*.py"), *(ROOT / "explorer").rglob("*.py")]:
        parts = p.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths
                         else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def test_no_import_cycles():
    """A circle of imports (even through a lazy one) means two modules share a concern."""
    graph = _project_imports()
    seen, path = set(), []

    def visit(node):
        if node in path:
            cycle = path[path.index(node):] + [node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in seen:
            return
        path.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        path.pop()
        seen.add(node)

    for module in sorted(graph):
        visit(module)


def test_code_points_only_at_files_in_the_repository():
    """Docstrings once sent readers to DESIGN.md and REFERENCES.md, which live outside it."""
    hits = [f"{p.relative_to(ROOT)}" for p in [*ROOT.glob("core/**/*.py"),
                                                *ROOT.glob("explorer/**/*.py"),
                                                *ROOT.glob("docs/*.md"), ROOT / "README.md"]
            if re.search(r"\b(DESIGN|REFERENCES)\.md\b", p.read_text())]
    assert not hits, f"these point outside the repository: {hits}"


def test_processes_the_tests_start_keep_settings_and_data_in_temporary_folders(tmp_path):
    """A `python -m explorer.app` a test starts inherits the environment: its QSettings file and
    data folder must land under the test session's temporary folders, never a user's own
    (conftest.py also fails the whole run if a user's folders change)."""
    import os
    import subprocess
    import sys
    import tempfile

    code = ("from PySide6.QtCore import QCoreApplication, QSettings; "
            "QCoreApplication.setOrganizationName('rlhf-explorer'); "
            "QCoreApplication.setApplicationName('rlhf-explorer'); "
            "from core.storage import default_data_dir; "
            "print(QSettings().fileName()); print(default_data_dir())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1],
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).stdout.split("\n")
    temp = os.path.realpath(tempfile.gettempdir())
    for path in out[:2]:
        assert os.path.realpath(path).startswith(temp), path
