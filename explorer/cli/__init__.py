"""The headless command line, Qt-free: `train`, `pretrain`, `runs`, `metrics` (commands.py),
`rankings` and `rm` (rankings.py), `sweep`, `sweeps` and `sweep-report` (sweep.py), with one-line
errors (errors.py) and the progress line and tables (output.py). `explorer.app` routes to it
when a command is given; it loads no Qt (`tests/explorer/cli/test_no_qt.py`), except for
`sweep-report`'s optional PNG, drawn on demand.
"""
