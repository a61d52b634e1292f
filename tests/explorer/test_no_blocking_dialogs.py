"""A window test never waits on a dialog nobody will answer (tests/conftest.py): it fails at once,
naming the dialog."""

import pytest


def test_a_blocking_dialog_fails_fast(qtbot):
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    # every blocking call the window makes is replaced (checked first: a real one would hang)
    for cls, names in ((QMessageBox, ("question", "information", "warning", "critical")),
                       (QInputDialog, ("getInt", "getText")),
                       (QFileDialog, ("getOpenFileName", "getSaveFileName"))):
        for name in names:
            assert getattr(cls, name).__name__ == "opened", f"{cls.__name__}.{name} is real"
    with pytest.raises(AssertionError, match="QMessageBox.question"):
        QMessageBox.question(None, "Delete?", "really")
    with pytest.raises(AssertionError, match="QInputDialog.getInt"):
        QInputDialog.getInt(None, "Steps", "how many", 5)
    with pytest.raises(AssertionError, match="exec"):
        QMessageBox().exec()
