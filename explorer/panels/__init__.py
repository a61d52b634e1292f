"""Dockable panels of the main window: hyperparameters, ranking, samples, runs, math views."""
