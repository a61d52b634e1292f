"""Python's cycle collector runs only on the GUI thread while the window is open.

Why: the collector runs on whichever thread happens to allocate past its threshold, and a
training worker allocates a lot. When it collected a cycle holding a Qt object (a closed dialog,
a menu), that object's C++ destructor ran on the worker: it took a Qt mutex and then waited for
the GIL, while the GUI thread, deleting a widget, held the GIL and waited for that mutex. Both
waited forever (seen as a suite that hung in `test_main_window.py`, py-spy showing exactly this).
So automatic collection is off and a GUI-thread timer collects by the same thresholds
(pyqtgraph's GarbageCollector does the same; this one can also be stopped, for the tests).
The headless CLI never starts it: there, collection stays automatic.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QTimer


class GuiThreadCollector:
    def __init__(self, interval_ms: int = 500):
        self.threshold = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer()
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds, as Python would."""
        g0, g1, g2 = gc.get_count()
        if g0 > self.threshold[0]:
            gc.collect(0)
            if g1 > self.threshold[1]:
                gc.collect(1)
                if g2 > self.threshold[2]:
                    gc.collect(2)

    def stop(self) -> None:
        """Back to automatic collection, after one full collection on this (the GUI) thread."""
        self.timer.stop()
        gc.collect()
        if self.was_enabled:
            gc.enable()
