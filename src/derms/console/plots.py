"""Small server-side SVG plots (no charting library, nothing fetched by the browser).

Each function returns an SVG document string with a polyline per series, labelled axes and
optional horizontal limit lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

W, H = 640, 260
L, R, T, B = 64, 16, 40, 36
COLOURS = ("#1f6fb2", "#d9822b", "#3a9d5d", "#b23b3b")


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def line_plot(
    title: str,
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    x_label: str,
    y_label: str,
    limits: dict[str, float] | None = None,
    x_format: str = "{:.0f}",
    y_scale: float = 1.0,
    element_id: str = "",
) -> str:
    """An SVG line plot; ``y_scale`` divides every y value (e.g. 1e3 for kW)."""
    limits = {k: v for k, v in (limits or {}).items() if v is not None and np.isfinite(v)}
    xs = np.asarray(x, float)
    ys = {k: np.asarray(v, float) / y_scale for k, v in series.items()}
    lims = {k: v / y_scale for k, v in limits.items()}
    data = np.concatenate([v[np.isfinite(v)] for v in ys.values()]) if ys else np.zeros(0)
    off_scale = {}
    if data.size:
        span = max(float(np.abs(data).max()), 1e-9)
        off_scale = {k: v for k, v in lims.items() if abs(v) > 3 * span}
        lims = {k: v for k, v in lims.items() if k not in off_scale}
    allv = np.concatenate([data, np.array(list(lims.values()), float)])
    if len(xs) == 0 or allv.size == 0:
        return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="plot" id="{element_id}"><text x="{W / 2}" y="{H / 2}" text-anchor="middle">{escape(title)}: no data yet</text></svg>'
    y0, y1 = float(allv.min()), float(allv.max())
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    x0, x1 = float(xs.min()), float(xs.max())
    if x1 - x0 < 1e-9:
        x1 = x0 + 1

    def px(v: float) -> float:
        return L + (v - x0) / (x1 - x0) * (W - L - R)

    def py(v: float) -> float:
        return H - B - (v - y0) / (y1 - y0) * (H - T - B)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="plot" id="{element_id}" role="img" aria-label="{escape(title)}">',
        f'<text x="{L}" y="16" class="plot-title">{escape(title)}</text>',
        f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" class="axis"/>',
        f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" class="axis"/>',
    ]
    for v in _ticks(y0, y1):
        parts.append(f'<text x="{L - 4}" y="{py(v) + 4:.1f}" text-anchor="end" class="tick">{_num(v)}</text>')
    for v in _ticks(x0, x1):
        parts.append(
            f'<text x="{px(v):.1f}" y="{H - B + 14}" text-anchor="middle" class="tick">{escape(x_format.format(v))}</text>'
        )
    parts.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 4}" text-anchor="middle" class="label">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{(T + H - B) / 2}" transform="rotate(-90 12 {(T + H - B) / 2})" text-anchor="middle" class="label">{escape(y_label)}</text>'
    )
    for name, v in lims.items():
        parts.append(f'<line x1="{L}" y1="{py(v):.1f}" x2="{W - R}" y2="{py(v):.1f}" class="limit"/>')
        parts.append(
            f'<text x="{W - R - 2}" y="{py(v) - 3:.1f}" text-anchor="end" class="limit-label">{escape(name)}</text>'
        )
    for k, (name, v) in enumerate(ys.items()):
        ok = np.isfinite(v)
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xs[ok], v[ok], strict=True))
        colour = COLOURS[k % len(COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{pts}" data-series="{escape(name)}"/>'
        )
        parts.append(f'<text x="{L + 150 * k}" y="32" fill="{colour}" class="legend">{escape(name)}</text>')
    for k, (name, v) in enumerate(off_scale.items()):
        parts.append(
            f'<text x="{W - R - 2}" y="{32 + 12 * k}" text-anchor="end" class="limit-label">'
            f"{escape(name)}: {v:,.0f} (off scale)</text>"
        )
    for a, b in zip(xs[-1:], [v[-1:] for v in ys.values()], strict=False):
        if len(b) and np.isfinite(b[0]):
            parts.append(f'<circle cx="{px(a):.1f}" cy="{py(b[0]):.1f}" r="2.5" class="last"/>')
    parts.append("</svg>")
    return "".join(parts)
