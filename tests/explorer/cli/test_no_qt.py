"""The headless command line loads no Qt: a server or a cluster's node has none."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_cli_and_building_its_parser_loads_no_qt():
    code = ("import sys, argparse, explorer.cli.commands as c, explorer.cli.sweep, "
            "explorer.cli.rankings, explorer.cli.errors, explorer.cli.output\n"
            "p = argparse.ArgumentParser(); c.register(p.add_subparsers())\n"
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
