"""The run store: runs and their SQLite schema (over core.storage's base), the run lock, the
state a resume reads, and the session that trains a run and records it.
"""
