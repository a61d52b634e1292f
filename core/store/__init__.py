"""The run store: the data folder, runs and their SQLite schema, the run lock, the state a resume
reads, config files, and the session that records a run.
"""
