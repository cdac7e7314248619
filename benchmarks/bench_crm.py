"""What the CRM parts cost: e-mail HTML rendering, ESP export throughput, metrics overhead per member.

    .venv/bin/python benchmarks/bench_crm.py [--members 20000] [--repeat 5]

1. HTML: the MJML/MRML renderer (contentgen.email_html) against the previous
   f-string renderer (the <details> layout it replaced, kept below only to compare),
   on the same assembled messages, interleaved, REPEAT rounds: median and range of
   microseconds per e-mail, the ratio, and bytes per e-mail.
2. ESP exports: a synthetic finished run of MEMBERS records (a real run's messages
   copied under new member ids, manifest rebuilt) exported to every format, each
   format REPEAT times interleaved: members per second, median and range.
3. Metrics: the calls the pipeline makes per member (member span, plan stage,
   decide, gates stage, commit) with RunMetrics against NullMetrics, interleaved:
   microseconds per member.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def previous_render_html(msg, plan, campaign) -> str:
    """The renderer before MJML (for comparison only)."""
    e = html.escape
    paras = "".join(f"<p>{e(p).replace(chr(10), '<br>')}</p>" for p in msg.body.split("\n\n") if p.strip())
    names = {pp.product.product_id: pp.product.name for pp in plan.products}
    why = ""
    if msg.explanations:
        items = "".join(
            f"<details><summary>Why was this recommended? ({e(names.get(x.product_id, x.product_id))})</summary>"
            f"<p>{e(x.text)}</p></details>" for x in msg.explanations)
        why = f'<div class="why">{items}</div>'

    def foot_part(part: str) -> str:
        label, sep, url = part.partition(": ")
        if sep and url.startswith("https://"):
            return f'<a href="{e(url, quote=True)}" style="color:#6a6f76">{e(label)}</a>'
        return e(part)

    foot = "<br>".join(foot_part(p) for p in msg.footer.split(" | "))
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(msg.subject)}</title></head>"
        '<body style="margin:0;padding:24px;background:#f6f5f2;font-family:Helvetica,Arial,sans-serif;'
        'font-size:16px;line-height:1.5;color:#1f2328">'
        f'<div style="display:none;max-height:0;overflow:hidden">{e(msg.preheader)}</div>'
        '<div style="max-width:600px;margin:0 auto;background:#ffffff;border-radius:8px;padding:28px 32px">'
        '<div style="font-weight:700;letter-spacing:.04em;color:#0f5c4d;margin-bottom:16px">'
        f"{e(campaign.brand.program)}</div>"
        f"{paras}"
        f'<p style="margin:24px 0"><a href="{e(msg.cta_url, quote=True)}" style="background:#0f5c4d;color:#ffffff;'
        f'text-decoration:none;padding:12px 20px;border-radius:6px;display:inline-block">{e(msg.cta_text)}</a></p>'
        f"{why}"
        '<hr style="border:none;border-top:1px solid #e3e1dc;margin:24px 0">'
        f'<p style="font-size:12px;color:#6a6f76">{foot}</p></div></body></html>'
    )


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.1f} ({min(xs):,.1f}-{max(xs):,.1f})"


def real_run(work: Path, n: int = 60) -> Path:
    from contentgen.pipeline import RunOptions, run_campaign
    from contentgen.sample_data import write_sample_data
    from tests import responders
    from tests.fake_openai import FakeOpenAI

    paths = write_sample_data(work / "data", n, seed=11, bad_rows=False)
    with FakeOpenAI() as fake:
        fake.responder = responders.copywriter
        run_campaign(paths["campaign"], RunOptions(out=work / "run", base_url=fake.base_url, api_key="k"))
    return work / "run"


def bench_html(run: Path, repeat: int) -> None:
    from types import SimpleNamespace as NS

    from contentgen.config import Brand
    from contentgen.email_html import render_html
    from contentgen.models import Explanation, RenderedMessage

    msgs = []
    for line in (run / "messages.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("send") and r["channel"] == "email":
            m = r["message"]
            msg = RenderedMessage(subject=m["subject"], preheader=m["preheader"], body=m["body"],
                                  cta_text=m["cta_text"], cta_url=m["cta_url"], footer=m["footer"],
                                  explanations=tuple(Explanation(**x) for x in m["explanations"]))
            plan = NS(products=[NS(product=NS(product_id=p["product_id"], name=p["name"]))
                                for p in (r.get("plan") or {}).get("products", [])], member=NS(locale="en-US"))
            msgs.append((msg, plan))
    camp = NS(brand=Brand())
    res = {"previous": [], "mjml": []}
    sizes = {"previous": [], "mjml": []}
    loops = 20
    for _ in range(repeat):
        for name, fn in (("previous", previous_render_html), ("mjml", render_html)):
            t0 = time.perf_counter()
            for _ in range(loops):
                for msg, plan in msgs:
                    out = fn(msg, plan, camp)
            res[name].append((time.perf_counter() - t0) / (loops * len(msgs)) * 1e6)
            sizes[name] = [len(fn(msg, plan, camp).encode()) for msg, plan in msgs]
    ratio = [b / a for a, b in zip(res["previous"], res["mjml"])]
    print(f"\n## HTML ({len(msgs)} e-mails x {loops} x {repeat} rounds)")
    print("| renderer | us per e-mail, median (range) | bytes per e-mail, median |")
    print("|---|---|---|")
    for name in res:
        print(f"| {name} | {summary(res[name])} | {statistics.median(sizes[name]):,.0f} |")
    print(f"mjml / previous time: {summary(ratio)}; for 2.3M e-mails the MJML renderer costs "
          f"{statistics.median(res['mjml']) * 2.3e6 / 1e6 / 60:,.1f} CPU-minutes")
    _ = out


def synthetic_run(real: Path, work: Path, members: int) -> Path:
    from contentgen.export import sha256_file

    recs = [json.loads(x) for x in (real / "messages.jsonl").read_text().splitlines()]
    out = work / "synthetic"
    out.mkdir()
    counts: dict[str, int] = {}
    with open(out / "messages.jsonl", "w", encoding="utf-8") as fh:
        for i in range(members):
            r = dict(recs[i % len(recs)])
            r["member_id"] = f"S{i:08d}"
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "quarantine.jsonl").write_text("")
    manifest = json.loads((real / "manifest.json").read_text())
    manifest.update(total_members=members, counts={o: counts.get(o, 0) for o in manifest["counts"]})
    manifest["files"] = {n: {"sha256": sha256_file(out / n), "records": members if n == "messages.jsonl" else 0}
                         for n in ("messages.jsonl", "quarantine.jsonl")}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def bench_esp(run: Path, work: Path, repeat: int, members: int) -> None:
    from contentgen.esp import FORMATS, export_esp

    ids = {"email": "101", "push": "102", "sms": "103", "inapp": "104"}
    times: dict[str, list[float]] = {f: [] for f in FORMATS}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        for fmt in FORMATS:
            t0 = time.perf_counter()
            m = export_esp(run, fmt, work / "esp" / fmt, campaign_ids=ids)
            times[fmt].append(m["members"] / (time.perf_counter() - t0))
            sizes[fmt] = sum(i["bytes"] for i in m["files"].values())
    sent = m["members"]
    print(f"\n## ESP exports ({members:,} records, {sent:,} sent, {repeat} rounds interleaved)")
    print("| format | members/s, median (range) | MiB written | 2.3M members at the median |")
    print("|---|---|---|---|")
    for fmt in FORMATS:
        med = statistics.median(times[fmt])
        print(f"| {fmt} | {summary(times[fmt])} | {sizes[fmt] / 2**20:,.1f} | {2.3e6 / med / 60:,.1f} min |")


def bench_metrics(repeat: int) -> None:
    from types import SimpleNamespace as NS

    from contentgen.metrics import NullMetrics, RunMetrics

    n = 20000
    rows = [{"outcome": "approved", "attempts": [{"findings": [{"rule_id": "brand.x", "gate": "brand",
                                                                "severity": "warning"}]}]}]

    async def decide():
        return NS(outcome="approved")

    def per_member(metrics) -> float:
        decider = NS(check=lambda plan, msg: None)
        metrics.instrument(decider)

        async def go():
            for i in range(n):
                m = metrics.member(f"k{i}")
                with m.stage("plan"):
                    pass
                await m.run(decide())
                decider.check(None, None)
                if i % 256 == 0:
                    with metrics.stage("commit"):
                        pass
                metrics.committed(rows)

        t0 = time.perf_counter()
        asyncio.run(go())
        return (time.perf_counter() - t0) / n * 1e6

    res = {"null": [], "prometheus": []}
    for _ in range(repeat):
        res["null"].append(per_member(NullMetrics()))
        res["prometheus"].append(per_member(RunMetrics()))
    print(f"\n## Metrics calls per member ({n:,} members, {repeat} rounds interleaved)")
    for k, v in res.items():
        print(f"{k}: {summary(v)} us per member")
    print(f"added by RunMetrics: {statistics.median(res['prometheus']) - statistics.median(res['null']):,.1f} us "
          f"per member")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        real = real_run(work)
        bench_html(real, args.repeat)
        bench_esp(synthetic_run(real, work, args.members), work, args.repeat, args.members)
        bench_metrics(args.repeat)


if __name__ == "__main__":
    main()
