"""The lecture's second half, the loop: the trainer, the run's control state, numerical faults. The
objectives are in core.algorithms.
"""
