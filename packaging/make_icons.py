"""Render resources/icons/llm-studio.svg into every icon file the desktops want.

    python packaging/make_icons.py [--out DIR]      (default: resources/icons)

Writes llm-studio-<N>.png for N in SIZES (Linux .desktop / hicolor theme, the bundle), llm-studio.ico
(Windows: the PNGs packed in one ICO) and llm-studio.icns (macOS: the PNGs packed in one ICNS). Qt
renders the SVG offscreen (QSvgRenderer), so no Pillow, Inkscape or iconutil is needed on any of the
three build machines; the ICO and ICNS containers are written by hand (both simply hold PNG data).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG = os.path.join(ROOT, "resources", "icons", "llm-studio.svg")
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # ICO stores at most 256 px
# ICNS element types that hold PNG data, by pixel size (ic10 would be 512@2x; 512 is the largest we render).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def render_png(svg_path: str, size: int) -> bytes:
    """The SVG rendered at size x size on a transparent background, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(svg_path)
    if not renderer.isValid():
        raise ValueError(f"{svg_path}: not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    buffer.close()
    return bytes(data)


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file holding the given PNGs (supported by Windows since Vista)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = [], []
    for size in sizes:
        blob = pngs[size]
        # width/height 0 means 256; 32 bits per pixel; the PNG follows the directory.
        entries.append(struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(blob), offset))
        blobs.append(blob)
        offset += len(blob)
    return header + b"".join(entries) + b"".join(blobs)


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file holding the given PNGs under their element types (big-endian lengths)."""
    body = b"".join(ICNS_TYPES[size] + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
                    for size in sorted(pngs) if size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icons(out_dir: str, svg_path: str = SVG) -> list[str]:
    """Write the PNG sizes, the ICO and the ICNS into out_dir; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    pngs = {size: render_png(svg_path, size) for size in SIZES}
    files = {f"llm-studio-{size}.png": blob for size, blob in pngs.items()}
    files["llm-studio.ico"] = ico_bytes({s: pngs[s] for s in ICO_SIZES})
    files["llm-studio.icns"] = icns_bytes(pngs)
    written = []
    for name, blob in files.items():
        path = os.path.join(out_dir, name)
        with open(path, "wb") as fh:
            fh.write(blob)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(ROOT, "resources", "icons"), help="output folder")
    p.add_argument("--svg", default=SVG, help="the source SVG")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # QPainter needs one
    for path in write_icons(args.out, args.svg):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
