"""The plain attributes of a small stateful object (a KL controller, a moving-average baseline)
as JSON-able values, and back: how such objects take part in a resume without pickling."""

from __future__ import annotations

_PLAIN = (int, float, str, bool, type(None))


def plain_state(obj) -> dict:
    """The plain attributes (numbers, strings, lists of numbers) of `obj`."""
    out = {}
    for key, value in vars(obj).items():
        if isinstance(value, _PLAIN) or (isinstance(value, list)
                                         and all(isinstance(v, _PLAIN) for v in value)):
            out[key] = value
    return out


def load_plain(obj, state: dict) -> None:
    """Set back what `plain_state` gave, for the attributes `obj` has."""
    for key, value in state.items():
        if key in vars(obj):
            setattr(obj, key, list(value) if isinstance(value, list) else value)
