"""HTML of the report's lever and fairness sections (``report_html.render_html`` places them)."""

from __future__ import annotations

from typing import Any

from .report_html import _ci, _metric_defs, esc, forest_chart, pct, pp, spct

__all__ = ["levers_html", "fairness_html"]

_FAIR_CSS = ("<style>tr.flag td{background:#fef2f2;color:#991b1b;font-weight:600}"
             ".flagtag{display:inline-block;font-size:11px;padding:1px 7px;border-radius:9px;background:#dc2626;"
             "color:#fff}td.l,th.l{text-align:left}td.lever{text-align:left;white-space:normal;vertical-align:top;"
             "width:230px;background:#f8fafc}</style>")


def levers_html(rep: dict[str, Any]) -> str:
    lv = rep.get("levers") or {}
    if not lv.get("configured"):
        return ('<h2>Which lever drove it?</h2><p class="lead">No per-lever holdout cells in this run. Add '
                '<code>levers: {content: 0.05, timing: 0.05, channel: 0.05, offer: 0.05}</code> to the campaign '
                'file to measure each lever (content, timing, channel, offer) on its own.</p>')
    parts = ['<h2>Which lever drove it?</h2>',
             '<p class="lead">Randomized cells switch off one lever each and keep the rest. A lever\'s lift is '
             f'(treated, every lever on: {lv["n_all_on"]:,} members) − (treated, that lever off), with 95% intervals '
             '(Newcombe for rates, Welch for revenue). Intention-to-treat: cell members for whom the switch changed '
             'nothing (e.g. e-mail was already their channel) are counted.</p>']
    overall = (rep.get("lift") or {}).get("overall", {}).get("metrics", {})
    panels = []
    for key, label, f, tf, _t, _c in _metric_defs():
        rows = []
        for g in lv["levers"]:
            m = g["metrics"][key]
            ci = m.get("diff_ci") or [None, None]
            rows.append({"label": g["lever"], "value": m.get("diff"), "lo": ci[0], "hi": ci[1], "small": g["small_n"]})
        unit = " (pp)" if key != "revenue_per_member" else " ($)"
        panels.append(f'<div class="panel">{forest_chart(rows, f, title=label + ": lever on − off" + unit, tick_fmt=tf)}'
                      "</div>")
    parts.append('<div class="grid2">' + "".join(panels) + "</div>")
    head = ("<tr><th>Lever (switched off means)</th><th>Metric</th><th>n on</th><th>n off</th><th>On</th><th>Off</th>"
            "<th>Lift (on − off)</th><th>95% CI</th><th>Relative</th><th>Share of overall lift</th></tr>")
    body = []
    defs = _metric_defs()
    for g in lv["levers"]:
        for j, (key, mlabel, f, _tf, tv, cv) in enumerate(defs):
            m = g["metrics"][key]
            total = (overall.get(key) or {}).get("diff")
            share = (m["diff"] / total) if (m.get("diff") is not None and total) else None
            lever = (f'<td class="lever" rowspan="{len(defs)}"><b>{esc(g["lever"])}</b><br>'
                     f'<span class="note">{esc(g["description"])}</span>'
                     + ('<br><span class="tag">n too small</span>' if g["small_n"] else "") + "</td>") if j == 0 else ""
            body.append(f'<tr class="{"small" if g["small_n"] else ""}">{lever}<td class="l">{esc(mlabel)}</td>'
                        f'<td>{m["treated"]["n"]:,}</td><td>{m["control"]["n"]:,}</td>'
                        f'<td>{esc(tv(m["treated"]))}</td><td>{esc(cv(m["control"]))}</td>'
                        f'<td>{esc(f(m["diff"]) if m.get("diff") is not None else "–")}</td>'
                        f'<td>{esc(_ci(m.get("diff_ci"), f))}</td><td>{esc(spct(m.get("rel_lift")))}</td>'
                        f'<td>{esc(pct(share, 0) if share is not None else "–")}</td></tr>')
    parts.append(f'<table class="lift">{head}{"".join(body)}</table>')
    parts.append('<p class="note">Share of overall lift = lever lift / (treated − holdout) lift; it reads as an '
                 'attribution only if the levers\' effects add up.</p>')
    return _FAIR_CSS + "".join(parts)


def _rate_fmt(key: str):
    return (lambda v: pct(v, 2)) if key in ("opt_out_rate", "rejection_rate") else (lambda v: pct(v, 1))


def fairness_html(rep: dict[str, Any]) -> str:
    fa = rep.get("fairness")
    if not fa:
        return ""
    parts = ['<h2>Fairness audit</h2>',
             '<p class="lead">Each group against everyone else, by ' + esc(", ".join(d.replace("_", " ")
                                                                                    for d in fa["dimensions"]))
             + f'. {esc(fa["rule"])}.</p>']
    for note in fa.get("notes") or []:
        parts.append(f'<div class="warn">{esc(note)}</div>')
    flags = fa["flags"]
    if flags:
        head = ("<tr><th>Metric</th><th class=\"l\">Dimension</th><th class=\"l\">Group</th><th>n</th><th>Group rate</th>"
                "<th>Rest (or predicted)</th><th>Difference</th><th>95% CI</th><th>Margin</th>"
                "<th class=\"l\">Group is</th></tr>")
        body = []
        for fl in flags:
            f = pp
            body.append(f'<tr class="flag"><td>{esc(fl["label"])}</td><td class="l">{esc(fl["dimension"].replace("_", " "))}'
                        f'</td><td class="l">{esc(fl["group"])}</td><td>{fl["n"]:,}</td><td>{esc(pct(fl["rate"], 2))}</td>'
                        f'<td>{esc(pct(fl["rest_rate"], 2))}</td><td>{esc(f(fl["diff"]))}</td>'
                        f'<td>{esc(_ci(fl.get("diff_ci"), pp))}</td><td>± {esc(pct(fl["margin"], 1))}</td>'
                        f'<td class="l">{esc(fl.get("served", ""))}</td></tr>')
        parts.append(f'<h3><span class="flagtag">{len(flags)} flagged</span> groups beyond the margin</h3>'
                     f'<table>{head}{"".join(body)}</table>')
    else:
        parts.append('<p class="note">No group differs from the rest beyond its margin.</p>')
    for key, m in fa["metrics"].items():
        if not m.get("by"):
            continue
        fmt = _rate_fmt(key)
        parts.append(f'<details><summary>{esc(m["label"])} by group (population: {esc(m["population"])}; margin '
                     f'± {esc(pct(m["margin"], 1))})</summary>')
        head = ("<tr><th>Dimension</th><th class=\"l\">Group</th><th>n</th><th>Rate</th><th>95% CI</th><th>Rest</th>"
                "<th>Difference</th><th>95% CI</th><th></th></tr>")
        body = []
        for dim, rows in m["by"].items():
            for r in rows:
                cls = "flag" if r["flagged"] else ("small" if r["small_n"] else "")
                tag = '<span class="flagtag">flagged</span>' if r["flagged"] else \
                    ('<span class="tag">n too small</span>' if r["small_n"] else "")
                body.append(f'<tr class="{cls}"><td>{esc(dim.replace("_", " "))}</td><td class="l">{esc(r["group"])}</td>'
                            f'<td>{r["n"]:,}</td><td>{esc(fmt(r["rate"]) if r["rate"] is not None else "–")}</td>'
                            f'<td>{esc(_ci(r["rate_ci"], fmt))}</td>'
                            f'<td>{esc(fmt(r["rest_rate"]) if r["rest_rate"] is not None else "–")}</td>'
                            f'<td>{esc(pp(r["diff"]))}</td><td>{esc(_ci(r["diff_ci"], pp))}</td><td>{tag}</td></tr>')
        parts.append(f"<table>{head}{''.join(body)}</table></details>")
    cal = fa.get("calibration")
    if cal:
        parts.append(f'<details><summary>Churn-model calibration by group ({esc(cal["snapshot"])}; margin '
                     f'± {esc(pct(cal["margin"], 1))})</summary>')
        head = ("<tr><th>Dimension</th><th class=\"l\">Group</th><th>n</th><th>Mean predicted</th><th>Observed</th>"
                "<th>95% CI</th><th>Observed − predicted</th><th></th></tr>")
        body = []
        for dim, rows in cal["by"].items():
            for r in rows:
                cls = "flag" if r["flagged"] else ("small" if r["small_n"] else "")
                tag = '<span class="flagtag">flagged</span>' if r["flagged"] else ""
                body.append(f'<tr class="{cls}"><td>{esc(dim.replace("_", " "))}</td><td class="l">{esc(r["group"])}</td>'
                            f'<td>{r["n"]:,}</td><td>{esc(pct(r["mean_predicted"]))}</td>'
                            f'<td>{esc(pct(r["observed"]))}</td><td>{esc(_ci(r.get("observed_ci"), pct))}</td>'
                            f'<td>{esc(pp(r["difference"]))}</td><td>{tag}</td></tr>')
        parts.append(f"<table>{head}{''.join(body)}</table></details>")
    return "".join(parts)
