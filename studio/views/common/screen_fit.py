"""Window and dialog sizes that fit the screen: each asks for its preferred size and gets at most the
screen's available area less SCREEN_MARGIN. At 150 % scaling on a 1920 x 1080 screen (1280 x 720 logical),
or on a 1366 x 768 laptop, the preferred sizes ran off the screen's edge, with buttons out of reach."""

from __future__ import annotations

SCREEN_MARGIN = (40, 80)  # px: room for the window's frame and a desktop's panels


def fitted_size(widget, width: int, height: int) -> tuple[int, int]:
    """(width, height), each at most what `widget`'s screen has room for."""
    room = widget.screen().availableGeometry()
    return min(width, room.width() - SCREEN_MARGIN[0]), min(height, room.height() - SCREEN_MARGIN[1])


def resize_to_fit(widget, width: int, height: int) -> None:
    widget.resize(*fitted_size(widget, width, height))
