"""Page icons from Qt's own icon set (bundled with every Qt style, so nothing to ship or load)."""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

_STANDARD = {
    "Data": QStyle.SP_DirOpenIcon,
    "Tokenizer": QStyle.SP_FileDialogDetailedView,
    "Model": QStyle.SP_ComputerIcon,
    "Train": QStyle.SP_MediaPlay,
    "Runs": QStyle.SP_FileDialogListView,
    "Attention": QStyle.SP_FileDialogContentsView,
    "Generate": QStyle.SP_FileDialogNewFolder,
    "Evaluate": QStyle.SP_DialogApplyButton,
}


def page_icon(name: str) -> QIcon:
    return QApplication.style().standardIcon(_STANDARD.get(name, QStyle.SP_FileIcon))
