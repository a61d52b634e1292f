"""The lecture's first half: rankings (a person's, the simulated annotator's, a judge's, imported),
their store and formats, reward models learned from them and their store, the reward sources a
run reads, and feedback rounds.
"""
