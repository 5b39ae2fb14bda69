"""QR codes for links the dashboard shows, so a phone can open them from a computer's screen."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, label: str = "QR code of the link") -> Markup:
    """``text`` as an inline SVG QR code (no XML declaration), dark on light, with an accessible title."""
    svg = segno.make(text, error="m").svg_inline(scale=4, dark="#111", light="#fff", title=label)
    return Markup(svg)  # noqa: S704 - segno's own SVG of a link Hutch made, no user markup
