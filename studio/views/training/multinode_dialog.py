"""MultiNodeDialog: the exact torchrun command to run on each node of a multi-node training run."""

from __future__ import annotations

import shlex

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.run import node_commands
from studio.theme import banner_style


class MultiNodeDialog(QDialog):
    """Nodes, processes per node, rendezvous address and port in; one command per node out."""

    def __init__(self, config_path: str, overrides: list[str] | None = None, nproc: int = 1,
                 parent: QWidget | None = None, resume: bool = False, notice: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Multi-node training")
        self.config_path = config_path
        self.overrides = list(overrides or [])
        self.resume = resume
        self.notice = QLabel(notice)  # a stopped run resumes; a finished one would be refused: say so
        self.notice.setObjectName("banner")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(banner_style("info" if resume else "warning"))
        self.notice.setVisible(bool(notice))
        self.nnodes = QSpinBox()
        self.nnodes.setRange(2, 1024)
        self.nproc = QSpinBox()
        self.nproc.setRange(1, 64)
        self.nproc.setValue(max(1, nproc))
        self.addr = QLineEdit("10.0.0.1")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(29500)
        form = QFormLayout()
        form.addRow("Nodes", self.nnodes)
        form.addRow("Processes per node", self.nproc)
        form.addRow("Master address (node 0)", self.addr)
        form.addRow("Master port", self.port)
        # every rank reads the config, the data and, on a resume, the checkpoints (core.trainer_setup):
        # "the same data folder path" left out the run folder, which the other nodes read too
        note = QLabel("Run each command on its node. Every node needs this Python with the project installed "
                      "and this run's folder and its data at the same paths: a shared file system, or "
                      "copies (a resume reads the run's checkpoints on every node). Node 0 hosts the "
                      "rendezvous; only its rank 0 writes the run folder.")
        note.setWordWrap(True)
        self.commands = QPlainTextEdit()
        self.commands.setReadOnly(True)
        self.commands.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.commands.setMinimumSize(640, 180)
        copy = QPushButton("Copy all")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.commands.toPlainText()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        lay = QVBoxLayout(self)
        lay.addWidget(self.notice)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(self.commands, 1)
        lay.addWidget(buttons)
        for w in (self.nnodes, self.nproc, self.port):
            w.valueChanged.connect(self._update)
        self.addr.textChanged.connect(self._update)
        self._update()

    def node_commands(self) -> list[list[str]]:
        return node_commands(self.config_path, self.overrides, self.nproc.value(), self.nnodes.value(),
                             self.addr.text().strip(), self.port.value(), self.resume)

    def _update(self) -> None:
        text = "\n\n".join(f"# node {rank}\n{shlex.join(cmd)}" for rank, cmd in enumerate(self.node_commands()))
        self.commands.setPlainText(text)
