"""Task registry: prompts, pretraining corpora and hidden "true" rewards.

``TASKS`` maps a task's name to one shared instance; ``get_task(name)`` looks one up. The interface
(``Task``) and the grammar machinery live in ``core.tasks.base``; one module per task.
"""

from __future__ import annotations

from .arithmetic import ArithmeticTask
from .base import Task
from .length import LengthTask
from .sentiment import SentimentTask

TASKS: dict[str, Task] = {t.name: t for t in (SentimentTask(), ArithmeticTask(), LengthTask())}
DEFAULT_TASK = "sentiment"


def get_task(name: str) -> Task:
    """The registered task called ``name``; ValueError listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise ValueError(f"unknown task {name!r}; known tasks: {known}") from None


__all__ = ["DEFAULT_TASK", "TASKS", "ArithmeticTask", "LengthTask", "SentimentTask", "Task",
           "get_task"]
