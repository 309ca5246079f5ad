"""Page icons from Qt's own icon set (bundled with every Qt style, so nothing to ship or load), and the
app's own icon from resources/icons."""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

_STANDARD = {
    "Data": QStyle.SP_DirOpenIcon,
    "Tokenizer": QStyle.SP_FileDialogDetailedView,
    "Model": QStyle.SP_ComputerIcon,
    "Train": QStyle.SP_MediaPlay,
    "Runs": QStyle.SP_FileDialogListView,
    "Learning": QStyle.SP_FileDialogInfoView,
    "Attention": QStyle.SP_FileDialogContentsView,
    "Generate": QStyle.SP_FileDialogNewFolder,
    "Evaluate": QStyle.SP_DialogApplyButton,
}


def page_icon(name: str) -> QIcon:
    return QApplication.style().standardIcon(_STANDARD.get(name, QStyle.SP_FileIcon))


def app_icon() -> QIcon:
    """desktop_llm's own icon (resources/icons: PNGs rendered from the SVG at every size Qt asks for)."""
    from PySide6.QtCore import QSize

    from desktop_llm.resources import ICON_SIZES, icon_path

    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    if icon.isNull() and icon_path().is_file():
        icon.addFile(str(icon_path()))  # needs Qt's SVG icon engine
    return icon
