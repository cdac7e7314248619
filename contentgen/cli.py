"""The ``contentgen`` command line: a thin layer over the library.

A user mistake (a ContentgenError) prints one clear message and exits with its
code; it never shows a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .errors import ContentgenError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ContentgenError as e:
            click.secho(f"error: {e.render()}", fg="red", err=True)
            ctx.exit(e.exit_code)


@click.group(cls=_Group)
@click.version_option(package_name="contentgen")
def cli() -> None:
    """Personalized loyalty emails, written by an LLM and gated before they leave."""


@cli.command("check")
@click.argument("cases", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON verdict a line on stdout")
@click.option("--rules", "rules_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="rule folders (default: the repo's brand_rules/ and compliance/)")
def check_cmd(cases: Path, as_json: bool, rules_dirs: tuple[Path, ...]) -> None:
    """Run the four gates on labelled cases (contracts/check-cases.md); never calls a model."""
    from .check import check_cases

    code = check_cases(cases, as_json=as_json, rules_dirs=rules_dirs or None, out=sys.stdout)
    sys.exit(code)


@cli.group("rules", cls=_Group, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_cmd(ctx: click.Context, as_json: bool) -> None:
    """List every rule with id, gate, severity and message (or: rules impact)."""
    if ctx.invoked_subcommand is None:
        from .check import print_rules

        print_rules(as_json=as_json, out=sys.stdout)


@rules_cmd.command("impact")
@click.argument("old", type=click.Path(file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(file_okay=False, path_type=Path))
@click.option("--on", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="a finished run's folder (messages.jsonl, run.db)")
@click.option("--campaign", type=click.Path(dir_okay=False, path_type=Path),
              help="the run's campaign file (default: the one its run store recorded)")
@click.option("--examples", type=click.IntRange(0), default=3, show_default=True, help="examples per rule")
@click.option("--json", "as_json", is_flag=True)
def rules_impact_cmd(old: Path, new: Path, run_dir: Path, campaign: Path | None, examples: int,
                     as_json: bool) -> None:
    """Re-gate a past run's messages with OLD and NEW rules: per rule, messages newly flagged and
    newly cleared, with examples. OLD/NEW: a rules folder, or a checkout with brand_rules/ and compliance/."""
    import json

    from .gates.impact import format_impact, rules_impact

    imp = rules_impact(old, new, run_dir, campaign, examples)
    if as_json:
        sys.stdout.write(json.dumps(imp.as_dict(), indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_impact(imp, str(old), str(new)))


def _progress_printer():
    """A progress bar on a terminal (done, rate, ETA, 429s, timeouts, cost); a log line every 10 s otherwise
    (``progress.py``), from the start of the run, not only when members finish."""
    from .pipeline import Progress
    from .progress import ProgressPrinter

    return ProgressPrinter().watch(Progress())


def _run_with_progress(campaign: Path, opts):
    from .pipeline import run_campaign

    progress = _progress_printer()
    try:
        return run_campaign(campaign, opts, progress)
    finally:
        progress.on_update.close()


def _summary(result, *, demo: bool = False) -> None:
    from .summary import examples, fallback_records, model_line, outcome_line, print_side_by_side, read_records

    m = result.manifest
    click.echo("")
    if result.status == "already-complete":
        click.secho(result.message, fg="yellow")
    click.echo(f"run: {m.get('campaign_id')}  model: {m.get('model')}  members: {m.get('total_members')}")
    records = read_records(result.out) if demo else None  # the demo shows two e-mails; a batch run only counts
    click.echo(outcome_line(m, records if records is not None else fallback_records(result.out)))
    click.echo(model_line(m))
    click.echo(f"files: {result.out / 'messages.jsonl'}, {result.out / 'manifest.json'}, "
               f"{result.out / 'quarantine.jsonl'}")
    errors = (m.get("window") or {}).get("isolated_errors")
    if errors:
        click.secho(f"warning: contentgen failed on {errors} member(s) and went on without them; each is in "
                    "quarantine.jsonl with its file, line, field and error (please report them)", fg="yellow", err=True)
    if demo:
        left, right = examples(result.out, records)
        click.echo("\nwhat members received:")
        print_side_by_side(left, right, file=sys.stdout)


@cli.command("sample-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--members", "n", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "jsonl"]), default="csv", show_default=True)
@click.option("--clean", is_flag=True, help="no deliberately bad rows")
@click.option("--raw", is_flag=True, help="also DIR/raw/: transactions, events and attributes with their ground "
                                          "truth, for `contentgen score` (the campaign gets lever cells)")
def sample_data_cmd(out_dir: Path, n: int, seed: int, fmt: str, clean: bool, raw: bool) -> None:
    """Write a realistic AthenaPlus data set and a campaign file that points at it."""
    from .sample_data import write_sample_data

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_sample_data(out_dir, n, seed=seed, fmt=fmt, bad_rows=not clean, raw=raw)
    for name, p in paths.items():
        click.echo(f"{name}: {p}")


def _run_options(out, base_url, api_key, model, limit, concurrency, restart, shard=None, max_cost=None,
                 chunk_size=None, batch=False, batch_poll=None, store=None):
    from .pipeline import CHUNK, RunOptions

    return RunOptions(out=out, base_url=base_url, api_key=api_key, model=model, limit=limit,
                      concurrency=concurrency, restart=restart, shard=shard, max_cost=max_cost,
                      chunk_size=chunk_size or CHUNK, batch=batch, batch_poll_s=batch_poll or 10.0, store=store)


def _parse_shard(ctx, param, value):
    if value is None:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        raise click.BadParameter("write it as i/n with 0 <= i < n, e.g. 0/4") from None
    return i, n


@cli.command("run")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded model)")
@click.option("--api-key", help="API key (default: $OPENAI_API_KEY); never written anywhere")
@click.option("--model", help="model name, or PATH.gguf for a local GGUF on the embedded server")
@click.option("--limit", type=click.IntRange(1), help="only the first N member rows")
@click.option("--concurrency", type=click.IntRange(1))
@click.option("--restart", is_flag=True, help="discard the run store in --out and start over")
@click.option("--shard", callback=_parse_shard, help="run partition i of n (stable member-id hash), e.g. 0/4")
@click.option("--max-cost", type=float, help="stop sending new requests once this many USD are spent")
@click.option("--dry-run", is_flag=True, help="render every prompt, call no model, print token and cost estimates")
@click.option("--chunk-size", type=click.IntRange(1),
              help="at most this many finished members per run-store transaction (default 256; also every second)")
@click.option("--batch", is_flag=True, help="first attempts through the OpenAI Batch API (50% cheaper, up to 24h)")
@click.option("--batch-poll", type=float, help="seconds between batch status polls (default 10)")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="serve Prometheus metrics on this port while the run lasts (0: a free port, printed)")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="interface for --metrics-port")
@click.option("--store", "store_url", metavar="URL",
              help="run store: postgresql://user@host:port/db (shards of a run share it) or sqlite:///path "
                   "(default: $CONTENTGEN_STORE, else OUT/run.db); a folder remembers its store")
def run_cmd(campaign, out, base_url, api_key, model, limit, concurrency, restart, shard, max_cost, dry_run,
            chunk_size, batch, batch_poll, metrics_port, metrics_host, store_url) -> None:
    """Run a campaign: plan, generate, gate, decide and export every member."""
    if dry_run:
        import json

        from .dryrun import dry_run as do_dry_run

        report = do_dry_run(campaign, limit=limit, model=model, shard=shard,
                            progress=lambda n: click.echo(f"[contentgen] {n} members planned", err=True))
        click.echo(json.dumps(report, indent=2))
        return
    if out is None:
        raise click.UsageError("--out is required (except with --dry-run)")
    from .metrics import run_metrics

    opts = _run_options(out, base_url, api_key, model, limit, concurrency, restart, shard, max_cost, chunk_size,
                        batch, batch_poll, store_url)
    with run_metrics(metrics_port, metrics_host, log=lambda s: click.echo(f"[contentgen] {s}", err=True)) as metrics:
        opts.metrics = metrics
        result = _run_with_progress(campaign, opts)
    if result.status == "interrupted":
        from .stops import resume_command

        click.secho(f"{result.message}; resume with: {resume_command(['contentgen', *sys.argv[1:]])}",
                    fg="yellow", err=True)
        sys.exit(result.exit_code)
    if result.status == "paused":
        click.secho(f"\npaused: {result.message}\nre-run the same command to continue.", fg="yellow", err=True)
        sys.exit(result.exit_code or 3)
    _summary(result)


@cli.command("demo")
@click.option("--members", "n", type=click.IntRange(1), default=20, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo_cmd(n: int, out: Path, seed: int) -> None:
    """Sample data + a run on the embedded model, then what members received, side by side."""
    from .sample_data import write_sample_data

    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = write_sample_data(data, n, seed=seed)
    click.echo(f"sample data for {n} members in {data}; starting the embedded model "
               "(progress every 10 s)", err=False)
    _demo_link_secret(paths["campaign"])
    t0 = time.monotonic()
    # one member per commit: the progress moves member by member on the one-at-a-time embedded model
    result = _run_with_progress(paths["campaign"], _run_options(out / "run", None, None, None, None, None, True,
                                                                chunk_size=1))
    if result.status == "interrupted":
        click.secho(f"{result.message}; the demo starts over when run again", fg="yellow", err=True)
        sys.exit(result.exit_code)
    if result.status == "paused":
        click.secho(f"\npaused: {result.message}", fg="yellow", err=True)
        sys.exit(3)
    _summary(result, demo=True)
    click.echo(f"\ndemo finished in {time.monotonic() - t0:.0f}s")


def _demo_link_secret(campaign_path: Path) -> None:
    """The demo signs unsubscribe links with a secret derived from its campaign id unless one is set."""
    import os

    from .config import load_campaign
    from .links import demo_secret

    c = load_campaign(campaign_path)
    env = c.links.secret_env
    if os.environ.get(env, "").strip():
        click.echo(f"unsubscribe links are signed with the secret in ${env}")
        return
    os.environ[env] = demo_secret(c.campaign_id)
    click.echo(f"unsubscribe links are signed with a demo secret (${env} is not set); a real run needs its own: "
               f"export {env}=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\"")


@cli.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", multiple=True,
              type=click.Choice(["braze", "iterable", "sfmc", "klaviyo", "csv", "parquet"]),
              help="also write the files this ESP imports (repeatable); see README 'ESP exports'")
@click.option("--esp-out", type=click.Path(file_okay=False, path_type=Path),
              help="folder for the ESP files (default OUT_DIR/esp/FORMAT)")
@click.option("--esp-campaign", "esp_campaigns", multiple=True, metavar="CHANNEL=ID",
              help="Braze API-triggered / Iterable triggered campaign id per channel, e.g. email=123")
@click.option("--esp-list", help="Klaviyo list id the imported profiles join")
@click.option("--with-email", is_flag=True, help="add members' e-mail addresses from the campaign's members file")
@click.option("--campaign", "campaign_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="campaign file for --with-email (default: the one the run recorded)")
def export_cmd(out_dir: Path, formats, esp_out, esp_campaigns, esp_list, with_email, campaign_file) -> None:
    """Re-export a finished run from its store, applying reviewers' approve/reject decisions; with --format,
    also write ESP-ready files (only members with send=true)."""
    from .store import has_run_store

    if has_run_store(out_dir) or not formats:
        from .pipeline import reexport

        m = reexport(out_dir)
        click.echo(f"re-exported {m['total_members']} members ({m.get('review_overrides', 0)} reviewer decisions): "
                   + ", ".join(f"{k} {v}" for k, v in m["counts"].items() if v))
    if formats:
        from .esp import export_esp, parse_campaign_ids

        ids = parse_campaign_ids(esp_campaigns)
        for fmt in formats:
            target = (esp_out / fmt if len(formats) > 1 else esp_out) if esp_out else None
            em = export_esp(out_dir, fmt, target, campaign_ids=ids, with_email=with_email,
                            campaign_path=campaign_file, list_id=esp_list)
            folder = target or out_dir / "esp" / fmt
            click.echo(f"{fmt}: {em['members']} members in {folder}: " + ", ".join(
                name + (f" ({info['requests']} requests)" if info["requests"] else
                        f" ({info['records']} rows)" if info["records"] else "") for name, info in em["files"].items()))
            for note in em["notes"]:
                click.secho(f"  note: {note}", fg="yellow", err=True)


@cli.command("ray-run")
@click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--shards", type=click.IntRange(1), default=4, show_default=True)
@click.option("--address", help="Ray cluster address ('auto' to join one); default: start a local instance")
@click.option("--base-url")
@click.option("--api-key")
@click.option("--model")
@click.option("--concurrency", type=click.IntRange(1))
def ray_run_cmd(campaign, out, shards, address, base_url, api_key, model, concurrency) -> None:
    """Run the campaign as N shard tasks on Ray, then merge them into OUT/merged."""
    from .distributed import run_on_ray

    m = run_on_ray(campaign, out, shards, base_url=base_url, api_key=api_key, model=model,
                   concurrency=concurrency, address=address)
    click.echo(f"{shards} shards merged into {out / 'merged'}: {m['total_members']} members, "
               + ", ".join(f"{k} {v}" for k, v in m["counts"].items() if v))


@cli.command("merge")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
def merge_cmd(out_dir: Path, shards: tuple[Path, ...]) -> None:
    """Combine the exports of `run --shard i/n` into one export and manifest."""
    from .export import merge

    m = merge(out_dir, list(shards))
    click.echo(f"merged {len(shards)} shards: {m['total_members']} members, "
               + ", ".join(f"{k} {v}" for k, v in m["counts"].items() if v))


@cli.command("verify")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def verify_cmd(out_dir: Path) -> None:
    """Re-check an export against its manifest (checksums, counts, no member twice)."""
    from .export import verify

    res = verify(out_dir)
    click.echo(f"ok: {res['members']} members, " + ", ".join(f"{k} {v}" for k, v in res["counts"].items() if v))


@cli.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--outcomes", "outcomes", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="per-member outcomes CSV (member_id, opened, clicked, purchased, revenue, opted_out, complained)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="default: RUN_DIR/report")
@click.option("--json", "as_json", is_flag=True, help="print report.json to stdout")
@click.option("--members", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="members file for the fairness audit's age bands and locales (default: the run's campaign's)")
@click.option("--score", "score", type=click.Path(exists=True, path_type=Path),
              help="score_report.json (or its folder) for churn calibration by group (default: next to the members)")
def report_cmd(run_dir: Path, outcomes: Path, out: Path | None, as_json: bool, members: Path | None,
               score: Path | None) -> None:
    """Lift of treated over holdout (per segment and tier) and program health: report.json + report.html."""
    import json

    from .report import build_report, summary_lines, write_report

    rep = build_report(run_dir, outcomes, members=members, score=score)
    paths = write_report(rep, out or run_dir / "report")
    if as_json:
        click.echo(json.dumps(rep, indent=2, ensure_ascii=False))
        return
    of = rep["outcomes_file"]
    for line in summary_lines(rep):
        click.echo(line)
    mm = of.get("treated_mismatch")
    if mm and mm["count"]:
        click.secho(f"warning: 'treated' column disagrees with the run for {mm['count']} member(s); "
                    "the run's assignment is used", fg="yellow", err=True)
    for g in rep["levers"]["levers"]:
        m = g["metrics"]["open_rate"]
        click.echo(f"  lever {g['lever']}: open rate lift {m['diff']}, 95% CI {m['diff_ci']} "
                   f"({g['n_on']} on, {g['n_off']} off)")
    for fl in rep["fairness"]["flags"]:
        click.secho(f"  fairness: {fl['label']} of {fl['dimension']} {fl['group']} is {fl['rate']} vs "
                    f"{fl['rest_rate']} (beyond ±{fl['margin']})", fg="yellow")
    click.echo(f"files: {paths['json']}, {paths['html']}")


@cli.command("score")
@click.argument("raw_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="where members, recommendations and score_report.json go")
@click.option("--campaign", type=click.Path(dir_okay=False, path_type=Path),
              help="take the catalog and send date from it, and write OUT/campaign.yaml pointing at the outputs")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), help="product catalog (CSV/Parquet/JSONL)")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="score as of this day (default: the campaign's send date, else the day after the last activity)")
@click.option("--attributes", type=click.Path(dir_okay=False, path_type=Path), help="default RAW_DIR/attributes.*")
@click.option("--transactions", type=click.Path(dir_okay=False, path_type=Path),
              help="default RAW_DIR/transactions.*")
@click.option("--events", type=click.Path(dir_okay=False, path_type=Path), help="default RAW_DIR/events.*")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="members file format")
@click.option("--k", type=click.IntRange(6, 40), default=10, show_default=True, help="k-means clusters")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="threads for model fitting (more than the free cores slows it down)")
@click.option("--json", "as_json", is_flag=True, help="print score_report.json")
def score_cmd(raw_dir, out, campaign, catalog, as_of, attributes, transactions, events, fmt, k, seed, threads,
              as_json) -> None:
    """Segments, churn risk and product affinities from raw transactions, events and member attributes."""
    import json

    from .score import ScoreOptions, find_inputs, run_score

    inputs = find_inputs(raw_dir, attributes, transactions, events)
    rep = run_score(inputs, ScoreOptions(out=out, catalog=catalog, as_of=as_of.date() if as_of else None,
                                         campaign=campaign, fmt=fmt, k=k, seed=seed, threads=threads),
                    log=lambda msg: click.echo(f"[contentgen] {msg}", err=True))
    if as_json:
        click.echo(json.dumps(rep, indent=2, ensure_ascii=False))
        return
    seg, ch, af = rep["segments"], rep["churn"], rep["affinity"]
    v = ch["validation"]
    r = af["recall_at_10"]
    click.echo(f"scored {rep['rows']['members']:,} members as of {rep['as_of']} "
               f"({rep['quarantine']['rows']:,} raw rows quarantined)")
    click.echo("segments: " + ", ".join(f"{s} {x:.1%}" for s, x in seg["shares"].items())
               + f"; week-over-week agreement {seg['stability']['agreement']:.1%}"
               + ("" if seg["stability"]["stable"] else " (UNSTABLE)"))
    click.echo(f"churn: validation AUC {v['auc']}, Brier {v['brier']}, calibration error {v['ece']} "
               f"(fitted as of day {ch['train']['cutoff']}, judged as of day {v['cutoff']})")
    if r["members"]:
        click.echo(f"affinity: recall@10 {r['recall_model']:.3f} vs popularity {r['recall_popularity']:.3f} "
                   f"(difference {r['difference']:+.3f}, 95% CI {r['difference_ci']}, {r['members']:,} members)")
    o = rep["outputs"]
    click.echo(f"files: {o['members']}, {o['recommendations']}, {Path(o['members']).parent / 'score_report.json'}"
               + (f", {o['campaign']}" if o.get("campaign") else ""))


@cli.command("sample-outcomes")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--members", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the run's members file (default: from the run's campaign)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="default RUN_DIR/outcomes.csv")
@click.option("--seed", type=int, default=0, show_default=True)
def sample_outcomes_cmd(run_dir: Path, members: Path | None, out: Path | None, seed: int) -> None:
    """Outcomes for a finished run with planted lever effects and a planted disparity (and their truth)."""
    from .errors import InputFileError
    from .fairness import campaign_of_run
    from .sample_outcomes import write_sample_outcomes

    if members is None:
        c = campaign_of_run(run_dir)
        if c is None:
            raise InputFileError("cannot find the run's campaign to read its members file", file=str(run_dir),
                                 hint="pass --members")
        members = c.inputs.members
    res = write_sample_outcomes(run_dir, members, out, seed=seed)
    click.echo(f"{res['rows']:,} outcome rows: {res['outcomes']}; planted effects and expected lifts: "
               f"{res['truth']}")


@cli.command("allocate")
@click.option("--outcomes", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", type=click.Choice(["opened", "clicked", "purchased"]), default="clicked",
              show_default=True)
@click.option("--floor", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="minimum weight of every variant")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--draws", type=click.IntRange(100), default=20000, show_default=True)
def allocate_cmd(outcomes: Path, run_dir: Path, metric: str, floor: float, seed: int, draws: int) -> None:
    """Thompson sampling: next week's variant weights as a `variants:` block for the campaign file."""
    from .allocate import allocate, format_yaml

    click.echo(format_yaml(allocate(run_dir, outcomes, metric=metric, floor=floor, seed=seed, draws=draws)),
               nl=False)


from .web.commands import serve_cmd, sessions_cmd  # noqa: E402  (the studio's commands live with it)

cli.add_command(serve_cmd)
cli.add_command(sessions_cmd)


def main() -> None:
    cli(prog_name="contentgen")


if __name__ == "__main__":
    main()
