"""A titled form group that folds away, as the hyperparameter panel's knob groups use it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QFrame, QSizePolicy, QToolButton, QVBoxLayout, QWidget


class FoldingSection(QWidget):
    """A titled group whose body folds away under a click on its header."""

    def __init__(self, title: str, collapsed: bool):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(not collapsed)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = self.header.font()
        font.setWeight(font.Weight.DemiBold)
        self.header.setFont(font)
        self.header.toggled.connect(self._fold)
        layout.addWidget(self.header)
        self.body = QFrame()
        self.body.setFrameShape(QFrame.Shape.StyledPanel)
        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(10, 8, 8, 8)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(7)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        layout.addWidget(self.body)
        self._fold(not collapsed)

    def _fold(self, expanded: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
