"""The Data page's file list as a Qt item model: one row per source, drawn on demand.

A folder of a million small files is a million rows; a QTableWidget would build five million
item objects up front (minutes, gigabytes), where a model answers only for the rows on screen.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

HEADERS = ["File", "Size", "Encoding", "Status", "Details"]
STATUS = {"ok": "✓ ok", "empty": "○ empty", "error": "✗ skipped"}
UNSURE = "⚠ unsure"  # read, but the encoding may be wrong


def size_text(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


class SourcesModel(QAbstractTableModel):
    """Read-only rows over a list of `SourceInfo` (the list is shared, not copied)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sources: list = []

    def set_sources(self, sources: list) -> None:
        self.beginResetModel()
        self.sources = sources
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.sources)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return HEADERS[section]
        return None

    def text(self, row: int, column: int) -> str:
        s = self.sources[row]
        if column == 0:
            return Path(s.path).name
        if column == 1:
            return size_text(s.size_bytes)
        if column == 2:
            if not s.encoding:
                return "–"
            if s.chosen:
                return f"{s.encoding} (chosen)"
            return s.encoding + (f" · {s.confidence:.0%}" if s.confidence < 1 else "")
        if column == 3:
            return UNSURE if s.ok and s.unsure else STATUS.get(s.status, s.status)
        if s.ok and s.kind in ("jsonl", "csv", "tsv"):
            return f"{s.records:,} record{'' if s.records == 1 else 's'} · " + s.reason
        return s.reason

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.sources):
            return None
        if role == Qt.DisplayRole:
            return self.text(index.row(), index.column())
        s = self.sources[index.row()]
        if role == Qt.ToolTipRole:
            if index.column() == 2 and s.encoding:
                from desktop_llm.core.corpus import describe_encoding

                how = "chosen by you" if s.chosen else f"detected, {s.confidence:.0%} sure"
                return f"{describe_encoding(s.encoding)}: {how}. Right-click → Encoding… to change it."
            return s.path if index.column() == 0 else self.text(index.row(), index.column())
        if role == Qt.ForegroundRole and index.column() == 3 and not s.ok:
            return QBrush(QColor("#d13438"))
        if role == Qt.ForegroundRole and index.column() in (2, 3) and s.ok and s.unsure:
            return QBrush(QColor("#c55a00"))  # amber: readable on light and dark backgrounds
        return None
