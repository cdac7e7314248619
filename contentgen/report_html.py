"""HTML rendering of the campaign report: one self-contained page, charts as inline SVG.

No JavaScript and no external assets: the page is plain HTML + CSS with SVG
generated here. Every piece of text that comes from data (segment names, ids,
file paths, model names) goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from typing import Any, Callable, Sequence

from .report import MIN_N, RATE_METRICS, REVENUE_METRIC

__all__ = ["render_html", "esc", "forest_chart", "bar_chart", "stacked_chart"]

BLUE = "#2563eb"
RED = "#dc2626"
GREY = "#cbd5e1"
INK = "#0f172a"
MUTED = "#64748b"
GRID = "#e2e8f0"
OUTCOME_COLORS = {"approved": "#16a34a", "repaired": "#65a30d", "fallback": "#ca8a04", "review": "#ea580c",
                  "rejected": "#dc2626", "suppressed": "#64748b", "holdout": "#7c3aed", "invalid": "#94a3b8"}

Fmt = Callable[[float], str]


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def pp(x: float | None) -> str:
    """A difference of rates in percentage points."""
    return "–" if x is None else f"{x * 100:+.2f} pp"


def pct(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{x * 100:.{nd}f}%"


def spct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.1f}%"


def money(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{'+' if signed and x >= 0 else ''}{'-' if x < 0 else ''}${abs(x):,.2f}"


def _ci(ci: Sequence[float | None] | None, f: Fmt) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"[{f(ci[0])}, {f(ci[1])}]"


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about n steps; -0.0 becomes 0)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12) + 0.0 if abs(v) > step * 1e-9 else 0.0)
        v += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def _trim(s: str, n: int = 22) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# ================================================================ charts


def _svg_open(width: int, height: int, title: str) -> list[str]:
    """The opening of a chart: the svg element, its accessible title and the visible one."""
    return [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg" aria-label="{esc(title)}">',
            f'<title>{esc(title)}</title>', f'<text x="0" y="16" class="ct">{esc(title)}</text>']


def _grid(ticks: Sequence[float], X: Callable[[float], float], top: int, bottom_y: int, fmt: Fmt) -> list[str]:
    """A vertical grid line and a label for each tick."""
    out = []
    for t in ticks:
        out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top - 4}" y2="{bottom_y}" stroke="{GRID}"/>')
        out.append(f'<text x="{X(t):.1f}" y="{bottom_y + 15}" class="tk" text-anchor="middle">{esc(fmt(t))}</text>')
    return out


def _row_label(label: Any, x: int, yc: float) -> str:
    """A row's label, right-aligned at x, trimmed with the full text as its tooltip."""
    return (f'<text x="{x}" y="{yc + 4:.1f}" class="lb" text-anchor="end">'
            f'<title>{esc(label)}</title>{esc(_trim(str(label), 19))}</text>')


def forest_chart(rows: Sequence[dict[str, Any]], fmt: Fmt, *, title: str, width: int = 560,
                 tick_fmt: Fmt | None = None) -> str:
    """Horizontal bars from 0 to each row's value, with a CI whisker. rows: label, value, lo, hi, small, n."""
    tick_fmt = tick_fmt or fmt
    label_w, right_w, row_h, top, bottom = 128, 154, 30, 30, 26
    height = top + row_h * max(1, len(rows)) + bottom
    vals = [v for r in rows for v in (r.get("value"), r.get("lo"), r.get("hi")) if v is not None]
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    if lo == hi:
        lo, hi = lo - 0.01, hi + 0.01
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    x0, x1 = label_w, width - right_w

    def X(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    out = _svg_open(width, height, title)
    out += _grid(ticks, X, top, height - bottom, tick_fmt)
    out.append(f'<line x1="{X(0):.1f}" x2="{X(0):.1f}" y1="{top - 4}" y2="{height - bottom}" stroke="{INK}" '
               f'stroke-width="1.2"/>')
    for i, r in enumerate(rows):
        yc = top + i * row_h + row_h / 2
        out.append(_row_label(r["label"], label_w - 8, yc))
        v = r.get("value")
        if v is None:
            out.append(f'<text x="{x0 + 4}" y="{yc + 4:.1f}" class="na">no data</text>')
            continue
        small = r.get("small")
        color = GREY if small else (BLUE if v >= 0 else RED)
        xa, xb = sorted((X(0), X(v)))
        out.append(f'<rect class="bar" x="{xa:.1f}" y="{yc - 8:.1f}" width="{max(xb - xa, 1):.1f}" height="16" '
                   f'rx="2" fill="{color}" fill-opacity="{0.55 if small else 0.85}"/>')
        if r.get("lo") is not None and r.get("hi") is not None:
            wl, wh = X(r["lo"]), X(r["hi"])
            wc = MUTED if small else INK
            out.append(f'<g class="whisker" stroke="{wc}" stroke-width="1.4">'
                       f'<line x1="{wl:.1f}" x2="{wh:.1f}" y1="{yc:.1f}" y2="{yc:.1f}"/>'
                       f'<line x1="{wl:.1f}" x2="{wl:.1f}" y1="{yc - 5:.1f}" y2="{yc + 5:.1f}"/>'
                       f'<line x1="{wh:.1f}" x2="{wh:.1f}" y1="{yc - 5:.1f}" y2="{yc + 5:.1f}"/></g>')
        note = " · n too small" if small else ""
        out.append(f'<text x="{x1 + 8}" y="{yc + 4:.1f}" class="{"vs" if small else "vl"}">{esc(fmt(v))}'
                   f'<tspan class="nt">{esc(note)}</tspan></text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(rows: Sequence[dict[str, Any]], fmt: Fmt, *, title: str, width: int = 560,
              ref: float | None = None, ref_label: str = "", color: str = BLUE) -> str:
    """Horizontal bars from 0 (rates), optional CI whisker and a dashed reference line."""
    label_w, right_w, row_h, top, bottom = 128, 124, 28, 30, 26
    height = top + row_h * max(1, len(rows)) + bottom
    vals = [v for r in rows for v in (r.get("value"), r.get("hi")) if v is not None]
    if ref is not None:
        vals.append(ref)
    hi = max(vals + [0.0])
    ticks = _nice_ticks(0.0, hi if hi > 0 else 0.01, 4)
    hi = ticks[-1]
    x0, x1 = label_w, width - right_w

    def X(v: float) -> float:
        return x0 + v / hi * (x1 - x0)

    out = _svg_open(width, height, title)
    out += _grid(ticks, X, top, height - bottom, fmt)
    for i, r in enumerate(rows):
        yc = top + i * row_h + row_h / 2
        out.append(_row_label(r["label"], label_w - 8, yc))
        v = r.get("value")
        if v is None:
            out.append(f'<text x="{x0 + 4}" y="{yc + 4:.1f}" class="na">no data</text>')
            continue
        small = r.get("small")
        out.append(f'<rect class="bar" x="{x0}" y="{yc - 7:.1f}" width="{max(X(v) - x0, 1):.1f}" height="14" rx="2" '
                   f'fill="{GREY if small else color}" fill-opacity="0.85"/>')
        if r.get("lo") is not None and r.get("hi") is not None:
            out.append(f'<g class="whisker" stroke="{INK}" stroke-width="1.2">'
                       f'<line x1="{X(r["lo"]):.1f}" x2="{X(r["hi"]):.1f}" y1="{yc:.1f}" y2="{yc:.1f}"/>'
                       f'<line x1="{X(r["lo"]):.1f}" x2="{X(r["lo"]):.1f}" y1="{yc - 4:.1f}" y2="{yc + 4:.1f}"/>'
                       f'<line x1="{X(r["hi"]):.1f}" x2="{X(r["hi"]):.1f}" y1="{yc - 4:.1f}" y2="{yc + 4:.1f}"/></g>')
        out.append(f'<text x="{x1 + 8}" y="{yc + 4:.1f}" class="vl">{esc(r.get("text") or fmt(v))}</text>')
    if ref is not None:
        out.append(f'<line x1="{X(ref):.1f}" x2="{X(ref):.1f}" y1="{top - 6}" y2="{height - bottom}" stroke="{RED}" '
                   f'stroke-dasharray="4 3" stroke-width="1.4"/>')
        out.append(f'<text x="{width - 4}" y="16" class="tk" text-anchor="end" fill="{RED}">'
                   f'┆ {esc(ref_label)}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_chart(rows: Sequence[dict[str, Any]], parts: Sequence[tuple[str, str]], *, title: str,
                  width: int = 560) -> str:
    """100% stacked horizontal bars. rows: label, counts{part: n}; parts: (key, color)."""
    label_w, right_w, row_h, top, bottom = 128, 60, 26, 30, 30
    height = top + row_h * max(1, len(rows)) + bottom
    x0, x1 = label_w, width - right_w
    out = _svg_open(width, height, title)
    for i, r in enumerate(rows):
        yc = top + i * row_h + row_h / 2
        out.append(_row_label(r["label"], label_w - 8, yc))
        total = sum(r["counts"].get(k, 0) for k, _ in parts)
        x = float(x0)
        for k, color in parts:
            c = r["counts"].get(k, 0)
            if not total or not c:
                continue
            w = c / total * (x1 - x0)
            out.append(f'<rect class="seg" x="{x:.1f}" y="{yc - 8:.1f}" width="{w:.1f}" height="16" fill="{color}">'
                       f'<title>{esc(k)}: {c} ({c / total * 100:.1f}%)</title></rect>')
            x += w
        out.append(f'<text x="{x1 + 6}" y="{yc + 4:.1f}" class="vl">{total:,}</text>')
    # legend
    lx, ly = float(x0), height - 10
    for k, color in parts:
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14:.1f}" y="{ly}" class="tk">{esc(k)}</text>')
        lx += 18 + 7 * len(k)
    out.append("</svg>")
    return "".join(out)


# ================================================================ page


CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f8fafc;color:#0f172a;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:19px;margin:36px 0 6px;padding-top:6px;border-top:1px solid #e2e8f0}
h3{font-size:15px;margin:18px 0 8px;color:#334155}
p.sub{margin:0;color:#64748b}
p.lead{color:#334155;margin:4px 0 14px;max-width:900px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:20px 0 4px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:12px 14px}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#64748b}
.card .v{font-size:24px;font-weight:650;margin-top:2px}
.card .s{font-size:12.5px;color:#64748b}
.pos{color:#1d4ed8}.neg{color:#b91c1c}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px 24px;align-items:start}
.panel{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:12px 14px;overflow:hidden}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit}
svg .ct{font-size:13.5px;font-weight:600;fill:#0f172a}
svg .lb{font-size:12.5px;fill:#334155}
svg .tk{font-size:11px;fill:#64748b}
svg .vl{font-size:12px;fill:#0f172a;font-variant-numeric:tabular-nums}
svg .vs{font-size:12px;fill:#94a3b8;font-variant-numeric:tabular-nums}
svg .nt{font-size:10.5px;fill:#94a3b8}
svg .na{font-size:12px;fill:#94a3b8;font-style:italic}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:6px 9px;border-bottom:1px solid #e2e8f0;text-align:right;white-space:nowrap}
th{background:#f1f5f9;font-weight:600;color:#334155}
th:first-child,td:first-child{text-align:left}
table.lift td:nth-child(2),table.lift th:nth-child(2){text-align:left}
tr.small td{color:#94a3b8}
.tag{display:inline-block;font-size:11px;padding:1px 6px;border-radius:9px;background:#f1f5f9;color:#64748b}
.warn{background:#fff7ed;border:1px solid #fed7aa;color:#9a3412;border-radius:8px;padding:8px 12px;margin:8px 0}
.note{font-size:13px;color:#475569}
details{margin:10px 0}
summary{cursor:pointer;color:#334155;font-weight:600;font-size:14px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px;margin:8px 0}
dl.meta dt{color:#64748b}dl.meta dd{margin:0;word-break:break-all}
.legend{font-size:12.5px;color:#475569;margin:2px 0 10px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px;vertical-align:-1px}
"""


def _metric_defs() -> list[tuple[str, str, Fmt, Fmt, Callable[[dict], str], Callable[[dict], str]]]:
    """(key, label, diff formatter, tick formatter, treated value text, control value text)."""
    defs = []
    for key, _col, label in RATE_METRICS:
        defs.append((key, label, pp, lambda v: f"{v * 100:+.0f}" if abs(v) >= 0.01 or v == 0 else f"{v * 100:+.1f}",
                     lambda a: pct(a.get("rate")), lambda a: pct(a.get("rate"))))
    key, _col, label = REVENUE_METRIC
    defs.append((key, label, lambda v: money(v, signed=True), lambda v: f"{'-' if v < 0 else ''}${abs(v):g}",
                 lambda a: money(a.get("mean")), lambda a: money(a.get("mean"))))
    return defs


def _group_label(g: dict[str, Any], by: str) -> str:
    return f"Tier {g['tier']}" if by == "tier" else str(g["segment"])


def _lift_panels(groups: list[dict[str, Any]], by: str) -> str:
    panels = []
    for key, label, f, tf, _t, _c in _metric_defs():
        rows = []
        for g in groups:
            m = g["metrics"][key]
            ci = m.get("diff_ci") or [None, None]
            rows.append({"label": _group_label(g, by), "value": m.get("diff"), "lo": ci[0], "hi": ci[1],
                         "small": g["small_n"]})
        unit = " (pp)" if key != "revenue_per_member" else " ($)"
        panels.append(f'<div class="panel">{forest_chart(rows, f, title=label + ": treated − holdout" + unit, tick_fmt=tf)}</div>')
    return '<div class="grid2">' + "".join(panels) + "</div>"


def _lift_table(groups: list[tuple[str, dict[str, Any]]]) -> str:
    head = ("<tr><th>Group</th><th>Metric</th><th>n treated</th><th>n holdout</th><th>Treated</th>"
            "<th>Holdout</th><th>Difference</th><th>95% CI</th><th>Relative lift</th><th>95% CI</th><th></th></tr>")
    body = []
    for label, g in groups:
        for key, mlabel, f, _tf, tv, cv in _metric_defs():
            m = g["metrics"][key]
            body.append(
                f'<tr class="{"small" if g["small_n"] else ""}"><td>{esc(label)}</td><td>{esc(mlabel)}</td>'
                f'<td>{m["treated"]["n"]:,}</td><td>{m["control"]["n"]:,}</td>'
                f'<td>{esc(tv(m["treated"]))}</td><td>{esc(cv(m["control"]))}</td>'
                f'<td>{esc(f(m["diff"]) if m.get("diff") is not None else "–")}</td>'
                f'<td>{esc(_ci(m.get("diff_ci"), f))}</td><td>{esc(spct(m.get("rel_lift")))}</td>'
                f'<td>{esc(_ci(m.get("rel_lift_ci"), spct))}</td>'
                f'<td>{"<span class=tag>n too small</span>" if g["small_n"] else ""}</td></tr>')
    return f'<table class="lift">{head}{"".join(body)}</table>'


def _card(k: str, v: str, s: str = "", cls: str = "") -> str:
    return (f'<div class="card"><div class="k">{esc(k)}</div><div class="v {cls}">{esc(v)}</div>'
            f'<div class="s">{esc(s)}</div></div>')


def _signcls(x: float | None) -> str:
    return "" if x is None else ("pos" if x >= 0 else "neg")


def render_html(rep: dict[str, Any]) -> str:
    run, of, lift, health = rep["run"], rep["outcomes_file"], rep["lift"], rep["health"]
    ov = lift["overall"]["metrics"]
    o_open, o_click, o_rev = ov["open_rate"], ov["click_rate"], ov["revenue_per_member"]
    counts = run["outcome_counts"]
    parts: list[str] = []
    a = parts.append
    a("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      f"<title>{esc(rep['title'])}</title><style>{CSS}</style></head><body><main>")
    a(f"<h1>{esc(rep['title'])}</h1>")
    a(f'<p class="sub">Send date {esc(run.get("send_date") or "–")} · model {esc(run.get("model") or "–")} · '
      f'{run["total_members"]:,} members in the run · outcomes from {esc(of["path"])}</p>')

    sm = " · n too small" if lift["overall"]["small_n"] else ""
    a('<div class="cards">')
    a(_card("Members sent", f"{health['members_sent']:,}",
            f"{counts.get('holdout', 0):,} holdout · {counts.get('suppressed', 0):,} suppressed"))
    a(_card("Open rate lift", pp(o_open.get("diff")),
            f"{pct(o_open['treated']['rate'])} vs {pct(o_open['control']['rate'])} · rel {spct(o_open.get('rel_lift'))}{sm}",
            _signcls(o_open.get("diff"))))
    a(_card("Click rate lift", pp(o_click.get("diff")),
            f"{pct(o_click['treated']['rate'], 2)} vs {pct(o_click['control']['rate'], 2)} · rel "
            f"{spct(o_click.get('rel_lift'))}{sm}", _signcls(o_click.get("diff"))))
    a(_card("Revenue / member lift", money(o_rev.get("diff"), signed=True),
            f"{money(o_rev['treated']['mean'])} vs {money(o_rev['control']['mean'])} · 95% CI "
            f"{_ci(o_rev.get('diff_ci'), lambda v: money(v, signed=True))}", _signcls(o_rev.get("diff"))))
    ho = health["overall"]
    a(_card("Opt-out rate (treated)", pct(ho["opt_out"]["rate"], 2),
            f"holdout {pct(health['control_opt_out']['rate'], 2)} · complaints {pct(ho['complaint']['rate'], 3)}"))
    a(_card("Repair / fallback", f"{pct(ho['repair_rate'])} / {pct(ho['fallback_rate'])}",
            f"of {ho['messages']:,} messages · {ho['review']:,} review · {ho['rejected']:,} rejected"))
    cpm = health.get("cost_per_member_usd")
    a(_card("Cost per 1,000 members", "–" if cpm is None else f"${cpm * 1000:,.2f}",
            "no cost in the manifest" if cpm is None else f"${cpm:.6f} per member · ${health['cost_usd']:,.4f} total"))
    a(_card("Tokens per member", "–" if health.get("tokens_per_member") is None else f"{health['tokens_per_member']:,.0f}",
            f"{health['tokens']:,} tokens · {health['requests']:,} model calls"))
    a("</div>")

    warns = []
    if of["unknown_member_ids"]:
        warns.append(f"{of['unknown_member_ids']:,} outcome row(s) name member ids that are not in this run "
                     f"(ignored), e.g. {', '.join(esc(x) for x in of['unknown_examples'][:5])}.")
    mm = of.get("treated_mismatch")
    if mm and mm["count"]:
        warns.append(f"The outcomes file's <code>treated</code> column disagrees with the run for {mm['count']:,} "
                     f"member(s) ({pct(mm['share'])}): {mm['csv_treated_run_holdout']:,} marked treated but held out, "
                     f"{mm['csv_holdout_run_treated']:,} marked holdout but sent. The run's assignment is used.")
    miss = of["missing_outcomes"]
    if miss["treated"] or miss["control"]:
        warns.append(f"No outcome row for {miss['treated']:,} treated and {miss['control']:,} holdout member(s) "
                     "(left out of the figures).")
    for w in warns:
        # w mixes escaped data with our own markup: escape the data parts above, not the markup
        a(f'<div class="warn">{w}</div>')

    a("<h2>Incrementality: personalized vs holdout</h2>")
    a(f'<p class="lead">Treated = members the run sent a message to (approved, repaired or fallback); holdout = the '
      f'run\'s randomly held-out members. Bars show the absolute difference treated − holdout with its 95% confidence '
      f'interval; grey bars mark groups where either arm has fewer than {MIN_N} members (“n too small”).</p>')
    a("<h3>Overall</h3>")
    a(_lift_table([("All members", lift["overall"])]))
    a("<h3>By segment</h3>")
    a(_lift_panels(lift["by_segment"], "segment"))
    a("<h3>By opt-in tier</h3>")
    a(_lift_panels(lift["by_tier"], "tier"))
    a("<details><summary>Lift table by segment and tier</summary>")
    a(_lift_table([(f"Tier {g['tier']}", g) for g in lift["by_tier"]]
                  + [(str(g["segment"]), g) for g in lift["by_segment"]]))
    a("</details>")
    from .report_sections import fairness_html, levers_html

    a(levers_html(rep))

    a("<h2>Program health</h2>")
    a('<p class="lead">Opt-out and complaint rates among treated members with 95% Wilson intervals; the dashed red line '
      'is the holdout rate. Repair and fallback rates are shares of generated messages '
      '(approved + repaired + fallback).</p>')
    ref_o, ref_c = health["control_opt_out"]["rate"], health["control_complaint"]["rate"]

    def hrows(groups: list[dict], by: str, key: str) -> list[dict]:
        rows = []
        for g in groups:
            r = g[key]
            ci = r.get("ci") or [None, None]
            rows.append({"label": _group_label(g, by), "value": r.get("rate"), "lo": ci[0], "hi": ci[1],
                         "small": g["small_n"], "text": f"{pct(r.get('rate'), 2)} ({r['count']}/{r['n']})"
                         if r.get("rate") is not None else None})
        return rows

    f2: Fmt = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    f3: Fmt = lambda v: f"{v * 100:.2f}%"  # noqa: E731
    a('<div class="grid2">')
    for by, groups in (("tier", health["by_tier"]), ("segment", health["by_segment"])):
        a(f'<div class="panel">{bar_chart(hrows(groups, by, "opt_out"), f2, title=f"Opt-out rate by {by}", ref=ref_o, ref_label="holdout")}</div>')
        a(f'<div class="panel">{bar_chart(hrows(groups, by, "complaint"), f3, title=f"Complaint rate by {by}", ref=ref_c, ref_label="holdout", color="#0891b2")}</div>')
    gen_parts = [(k, OUTCOME_COLORS[k]) for k in ("approved", "repaired", "fallback", "review", "rejected")]
    rows = ([{"label": _group_label(g, "tier"), "counts": g["outcomes"]} for g in health["by_tier"]]
            + [{"label": _group_label(g, "segment"), "counts": g["outcomes"]} for g in health["by_segment"]])
    a(f'<div class="panel">{stacked_chart(rows, gen_parts, title="Message outcomes by tier and segment")}</div>')
    orows = [{"label": k, "value": float(v), "text": f"{v:,}"} for k, v in counts.items()]
    a('<div class="panel">' + bar_chart(orows, lambda v: f"{v:,.0f}", title="All members by run outcome",
                                        color="#475569") + "</div>")
    a("</div>")
    a("<h3>Health table</h3>")
    head = ("<tr><th>Group</th><th>Treated n</th><th>Opt-out rate</th><th>95% CI</th><th>Complaint rate</th>"
            "<th>95% CI</th><th>Messages</th><th>Repair rate</th><th>Fallback rate</th><th>Review</th>"
            "<th>Rejected</th></tr>")
    body = []
    for label, g in ([("All members", ho)] + [(f"Tier {g['tier']}", g) for g in health["by_tier"]]
                     + [(str(g["segment"]), g) for g in health["by_segment"]]):
        body.append(f'<tr><td>{esc(label)}</td><td>{g["opt_out"]["n"]:,}</td><td>{pct(g["opt_out"]["rate"], 2)}</td>'
                    f'<td>{esc(_ci(g["opt_out"]["ci"], lambda v: pct(v, 2)))}</td>'
                    f'<td>{pct(g["complaint"]["rate"], 3)}</td><td>{esc(_ci(g["complaint"]["ci"], lambda v: pct(v, 3)))}</td>'
                    f'<td>{g["messages"]:,}</td><td>{pct(g["repair_rate"])}</td><td>{pct(g["fallback_rate"])}</td>'
                    f'<td>{g["review"]:,}</td><td>{g["rejected"]:,}</td></tr>')
    a(f"<table>{head}{''.join(body)}</table>")

    a(fairness_html(rep))
    a("<h2>Data</h2>")
    a('<div class="panel"><dl class="meta">')
    meta = [("Run folder", run["dir"]), ("Campaign", run.get("campaign_id")), ("Model", run.get("model")),
            ("Outcomes file", of["path"]), ("Outcome rows", f"{of['rows']:,}"),
            ("Matched to treated / holdout", f"{of['treated']:,} / {of['control']:,}"),
            ("Rows for excluded members", f"{of['excluded_rows']:,}"),
            ("Unknown member ids", f"{of['unknown_member_ids']:,}"),
            ("Model calls", f"{health['requests']:,}"),
            ("Tokens in / out", f"{health['prompt_tokens']:,} / {health['completion_tokens']:,}")]
    d = run.get("dedup") or {}
    if isinstance(d, dict) and d.get("dedup_ratio") is not None:
        meta.append(("Dedup ratio", d.get("dedup_ratio")))
    for k, v in meta:
        a(f"<dt>{esc(k)}</dt><dd>{esc(v if v is not None else '–')}</dd>")
    a("</dl></div>")

    a("<h2>Methods</h2><ul class=\"note\">")
    for k, v in rep["methods"].items():
        a(f"<li><b>{esc(k.replace('_', ' '))}</b>: {esc(v)}</li>")
    a("</ul></main></body></html>\n")
    return "".join(parts)
