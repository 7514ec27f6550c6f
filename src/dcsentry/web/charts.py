"""Charts drawn on the server as inline SVG: no script, no library, nothing fetched, and the strict
CSP holds (colours come from classes in console.css, sizes from SVG presentation attributes).
Every mark carries its numbers (`data-count`, a `<title>` tooltip), so the browser test reads
the picture as a person would and the page still says it all with styles off."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from markupsafe import Markup, escape

from .timeseries import Axis

W = 1300  # viewBox width of full-width charts: the SVG scales to its box, about 1:1 at 1400 px
FONT = 'font-size="12"'


def rate(count: int, seconds: float) -> str:
    """Events per second, readable at every size: 0.004/s, 0.35/s, 12/s."""
    r = count / seconds if seconds else 0.0
    if r == 0:
        return "0/s"
    return (f"{r:.3f}" if r < 0.01 else f"{r:.2f}" if r < 10 else f"{r:.0f}") + "/s"


def _x_labels(axis: Axis, x0: float, slot_w: float, y: float, every: int, limit: float) -> list[str]:
    """Every `every`-th slot's start, those that fit before `limit` (no label cut at the edge)."""
    out = []
    for i in range(0, axis.n, every):
        if x0 + i * slot_w + 7 * len(axis.label(i)) > limit:
            break
        out.append(f'<text class="axis" x="{x0 + i * slot_w:.1f}" y="{y}" {FONT}>{escape(axis.label(i))}</text>')
    return out


def stacked_bars(axis: Axis, by_slot: Sequence[dict[str, int]], keys: Sequence[str], chart_id: str,
                 what: str = "alerts", height: int = 180, width: int = 780) -> Markup:
    """Bars over time, each stacked by `keys` (severity, result, ...); one <rect> per non-empty
    segment with data-slot, data-key and data-count."""
    left, bottom, top = 44, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(s.values()) for s in by_slot), default=0) or 1
    slot_w = plot_w / axis.n
    gap = 1.0 if slot_w > 4 else 0.0
    parts = [(f'<svg class="chart" id="{chart_id}" viewBox="0 0 {width} {height}" role="img" '
              f'aria-label="{escape(what)} over time" data-slots="{axis.n}" data-step="{axis.step}">'),
             f'<line class="grid" x1="{left}" y1="{top}" x2="{width - 8}" y2="{top}"/>',
             f'<line class="base" x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}"/>',
             f'<text class="axis" x="{left - 6}" y="{top + 9}" text-anchor="end" {FONT}>{peak}</text>',
             f'<text class="axis" x="{left - 6}" y="{top + plot_h}" text-anchor="end" {FONT}>0</text>']
    for i, slot in enumerate(by_slot):
        y = float(top + plot_h)
        for k in keys:
            c = slot.get(k, 0)
            if not c:
                continue
            h = max(1.0, plot_h * c / peak)
            y -= h
            tip = f"{axis.label(i)}: {c} {k} {what}"
            parts.append(f'<rect class="bar k-{escape(k)}" x="{left + i * slot_w + gap / 2:.1f}" y="{y:.1f}" '
                         f'width="{max(slot_w - gap, 0.5):.1f}" height="{h:.1f}" data-slot="{i}" '
                         f'data-key="{escape(k)}" data-count="{c}"><title>{escape(tip)}</title></rect>')
    every = max(1, round(axis.n / 8))
    parts += _x_labels(axis, left, slot_w, height - 6, every, width)
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(rows: Sequence[tuple[str, dict[str, int]]], keys: Sequence[str], chart_id: str,
          href: str | None = None, label_w: int = 190, width: int = 520) -> Markup:
    """One horizontal bar per row (a type, an account, a host), stacked by `keys`, the count at its
    end; `href` (a prefix) links each label to its page."""
    row_h = 22
    height = row_h * len(rows) + 4
    peak = max((sum(r.values()) for _, r in rows), default=0) or 1
    plot_w = width - label_w - 60
    parts = [f'<svg class="chart hbars" id="{chart_id}" viewBox="0 0 {width} {height}" role="img">']
    for j, (name, counts) in enumerate(rows):
        y = 2 + j * row_h
        total = sum(counts.values())
        room = label_w // 7
        label = escape(name if len(name) <= room else name[:room - 1] + "…")
        text = f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end" {FONT}>{label}</text>'
        if href:
            text = f'<a href="{escape(href + quote(name.lower() if "account" in href else name, safe=""))}">{text}</a>'
        parts.append(f'<g class="row" data-name="{escape(name)}" data-count="{total}">{text}')
        x = float(label_w)
        for k in keys:
            c = counts.get(k, 0)
            if not c:
                continue
            w = max(1.0, plot_w * c / peak)
            parts.append(f'<rect class="bar k-{escape(k)}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" '
                         f'height="{row_h - 8}" data-key="{escape(k)}" data-count="{c}">'
                         f'<title>{escape(f"{name}: {c} {k}")}</title></rect>')
            x += w
        parts.append(f'<text class="axis" x="{x + 6:.1f}" y="{y + 15}" {FONT}>{total}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def strips(axis: Axis, rows: Sequence[dict], chart_id: str, elapsed: float | None = None) -> Markup:
    """One sparkline row per event id of a DC: bars of events per slot (each row its own scale,
    its peak rate written beside it, "now" over the `elapsed` seconds of the last slot), a baseline
    where nothing came; a row the caller found `stopped` is marked."""
    row_h, left, right = 34, 300, 200
    plot_w = W - left - right
    slot_w = plot_w / axis.n
    height = row_h * len(rows) + 20
    parts = [(f'<svg class="chart strips" id="{chart_id}" viewBox="0 0 {W} {height}" role="img" '
              f'data-slots="{axis.n}" data-step="{axis.step}">')]
    for j, r in enumerate(rows):
        y0, series = j * row_h, r["series"]
        peak = max(series) or 1
        cls = "strip stopped" if r.get("stopped") else "strip"
        parts.append(f'<g class="{cls}" data-event="{r["event_id"]}" data-total="{sum(series)}" '
                     f'data-last="{series[-1]}" data-peak="{max(series)}">')
        title = r.get("title", "")
        short = title if len(title) <= 32 else title[:31] + "…"
        parts.append(f'<text class="label" x="{left - 8}" y="{y0 + 15}" text-anchor="end" {FONT}>'
                     f'<title>{escape(title)}</title>{r["event_id"]} {escape(short)}</text>')
        base = y0 + row_h - 8
        parts.append(f'<line class="base" x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}"/>')
        for i, c in enumerate(series):
            if not c:
                continue
            h = max(1.5, (row_h - 12) * c / peak)
            parts.append(f'<rect class="bar k-events" x="{left + i * slot_w:.1f}" y="{base - h:.1f}" '
                         f'width="{max(slot_w - 0.6, 0.6):.1f}" height="{h:.1f}" data-slot="{i}" data-count="{c}">'
                         f'<title>{escape(axis.label(i))}: {c} events, {rate(c, axis.step)}</title></rect>')
        note = f"peak {rate(max(series), axis.step)} · now {rate(series[-1], elapsed or axis.step)}"
        parts.append(f'<text class="note" x="{left + plot_w + 10}" y="{y0 + 15}" {FONT}>{escape(note)}</text>')
        if r.get("stopped"):
            parts.append(f'<text class="alarm" x="{left + plot_w + 10}" y="{y0 + 28}" {FONT}>'
                         f'{escape(r["stopped"])}</text>')
        parts.append("</g>")
    every = max(1, round(axis.n / 8))
    parts += _x_labels(axis, left, slot_w, height - 4, every, W - right + 60)
    parts.append("</svg>")
    return Markup("".join(parts))

