"""Small server-side SVG charts (no JavaScript): horizontal bars, a 100% stacked bar, a heat grid.

Every label is escaped; colours come from CSS classes in studio.css so the
charts follow the page's palette.
"""

from __future__ import annotations

from markupsafe import Markup, escape

FONT = 'font-family="inherit" font-size="12"'


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def hbars(items: list[tuple[str, float, str]], *, width: int = 560, label_w: int = 190, bar_h: int = 20,
          gap: int = 8, href: list[str] | None = None, title: str = "") -> Markup:
    """items: (label, value, css class). Optional href per item makes each row a link."""
    if not items:
        return Markup('<p class="muted">Nothing to chart yet.</p>')
    top = max(v for _, v, _ in items) or 1
    plot_w = width - label_w - 60
    h = len(items) * (bar_h + gap) + gap
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {h}" width="100%" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, v, cls) in enumerate(items):
        y = gap + i * (bar_h + gap)
        w = max(2, int(plot_w * v / top)) if v else 0
        label_s = label if len(label) <= 30 else label[:29] + "…"
        row = (f'<text x="{label_w - 8}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" class="lbl" {FONT}>'
               f'<title>{escape(label)}</title>{escape(label_s)}</text>'
               f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" rx="3" class="{escape(cls)}"/>'
               f'<text x="{label_w + w + 6}" y="{y + bar_h * 0.72:.1f}" class="val" {FONT}>{_fmt(v)}</text>')
        if href and href[i]:
            row = f'<a href="{escape(href[i])}">{row}</a>'
        parts.append(row)
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked(items: list[tuple[str, float, str]], *, width: int = 560, bar_h: int = 28, title: str = "") -> Markup:
    """One 100% bar split into items, with a legend underneath."""
    total = sum(v for _, v, _ in items)
    if not total:
        return Markup('<p class="muted">Nothing to chart yet.</p>')
    legend_rows = (len(items) + 2) // 3
    h = bar_h + 14 + legend_rows * 20
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {h}" width="100%" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    x = 0.0
    for label, v, cls in items:
        w = width * v / total
        if w > 0:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{bar_h}" class="{escape(cls)}">'
                         f'<title>{escape(label)}: {_fmt(v)} ({100 * v / total:.1f}%)</title></rect>')
            if w > 44:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{bar_h * 0.66:.1f}" text-anchor="middle" '
                             f'class="inbar" {FONT}>{100 * v / total:.0f}%</text>')
        x += w
    for i, (label, v, cls) in enumerate(items):
        lx, ly = (i % 3) * (width / 3), bar_h + 14 + (i // 3) * 20
        parts.append(f'<rect x="{lx:.0f}" y="{ly - 10}" width="12" height="12" rx="2" class="{escape(cls)}"/>'
                     f'<text x="{lx + 18:.0f}" y="{ly}" class="lbl" {FONT}>{escape(label)} '
                     f'({_fmt(v)}, {100 * v / total:.1f}%)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat(rows: list[str], cols: list[str], cell: dict[tuple[str, str], tuple[int, int]], *, width: int = 560,
         label_w: int = 130, cell_h: int = 30, title: str = "",
         href: dict[tuple[str, str], str] | None = None) -> Markup:
    """A grid: cell[(row, col)] = (hits, total); shade by hits/total, label "hits/total"; href links a cell."""
    if not rows or not cols:
        return Markup('<p class="muted">Nothing to chart yet.</p>')
    cw = (width - label_w) / len(cols)
    h = 24 + len(rows) * (cell_h + 4)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {h}" width="100%" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for j, c in enumerate(cols):
        parts.append(f'<text x="{label_w + cw * j + cw / 2:.1f}" y="14" text-anchor="middle" class="lbl" {FONT}>'
                     f'{escape(c)}</text>')
    for i, r in enumerate(rows):
        y = 24 + i * (cell_h + 4)
        parts.append(f'<text x="{label_w - 8}" y="{y + cell_h * 0.65:.1f}" text-anchor="end" class="lbl" {FONT}>'
                     f'{escape(r)}</text>')
        for j, c in enumerate(cols):
            hits, total = cell.get((r, c), (0, 0))
            share = hits / total if total else 0.0
            op = 0.08 + 0.85 * share if total else 0.0
            x = label_w + cw * j
            parts.append(f'<rect x="{x + 2:.1f}" y="{y}" width="{cw - 4:.1f}" height="{cell_h}" rx="3" '
                         f'class="heat" fill-opacity="{op:.2f}"><title>{escape(r)}, {escape(c)}: {hits} of {total} '
                         f'members with error findings</title></rect>')
            txt = f"{hits}/{total}" if total else "–"
            cls = "inbar" if op > 0.5 else "lbl"
            label = (f'<text x="{x + cw / 2:.1f}" y="{y + cell_h * 0.65:.1f}" text-anchor="middle" '
                     f'class="{cls}" {FONT}>{txt}</text>')
            link = (href or {}).get((r, c))
            if link and hits:
                rect = parts.pop()
                parts.append(f'<a href="{escape(link)}">{rect}{label}</a>')
            else:
                parts.append(label)
    parts.append("</svg>")
    return Markup("".join(parts))
