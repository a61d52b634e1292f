"""Sweeps: a config over seeds and a grid, run on Ray Tune, recorded, reported and drawn.
"""
