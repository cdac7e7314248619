"""The studio's command-line commands: ``contentgen serve`` and ``contentgen sessions``.

Registered on the ``contentgen`` group by ``cli.py``; imports nothing heavy
until a command runs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_settings(host: str, secure_cookies: bool | None, allowed_hosts: tuple[str, ...]) -> tuple[bool, list[str]]:
    """(https-only cookies?, Host header values to serve) for ``serve --host``: cookies are https-only
    whenever the studio listens beyond loopback unless told otherwise; hosts default to loopback names
    plus the bound host."""
    from .app import default_allowed_hosts

    secure = (not is_loopback(host)) if secure_cookies is None else secure_cookies
    hosts = list(allowed_hosts) or default_allowed_hosts(host)
    return secure, hosts


@click.command("serve")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind (loopback by default)")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--users", "users_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML accounts with hashed passwords (python -m contentgen.web.auth NAME); "
                   "default: one 'admin' account with a token printed here")
@click.option("--campaign", "campaign_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the campaign file (default: the one the run recorded in its store)")
@click.option("--variants", "variants_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="a folder of prompt-variant folders to offer in the preview")
@click.option("--base-url", help="model endpoint for previews (default: $OPENAI_BASE_URL, else the embedded model)")
@click.option("--model", help="model name for previews")
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="https-only __Host- session cookies and HSTS (default: on unless --host is loopback)")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="a Host header value to serve (repeatable; '*' for any); default: loopback names and --host")
@click.option("--idle-minutes", type=click.FloatRange(1), default=30, show_default=True,
              help="a session ends after this long without a request")
@click.option("--max-hours", type=click.FloatRange(0.1), default=12, show_default=True,
              help="a session ends this long after sign-in")
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, exists=True), help="serve https with this certificate")
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True), help="the certificate's private key")
def serve_cmd(run_dir, host, port, users_file, campaign_file, variants_dir, base_url, model, secure_cookies,
              allowed_hosts, idle_minutes, max_hours, ssl_certfile, ssl_keyfile) -> None:
    """The studio: preview prompt variants, review the audit queue, record decisions (web app)."""
    import os
    import secrets

    import uvicorn

    from .app import create_app
    from .auth import Accounts, SessionPolicy

    if users_file:
        accounts = Accounts.load(users_file)
    else:
        token = secrets.token_urlsafe(12)
        accounts = Accounts.single("admin", token)
        click.echo(f"no --users file: sign in as 'admin' with password {token}", err=True)
    secure, hosts = serve_settings(host, secure_cookies, allowed_hosts)
    policy = SessionPolicy(idle_s=idle_minutes * 60, max_s=max_hours * 3600, secure=secure)
    app = create_app(run_dir, accounts=accounts, campaign_path=campaign_file, base_url=base_url,
                     api_key=os.environ.get("OPENAI_API_KEY"), model=model, variants_dir=variants_dir,
                     secure_cookies=secure, allowed_hosts=hosts, policy=policy)
    if host in ("0.0.0.0", "::") and not allowed_hosts:
        click.secho(f"listening on every interface but serving only Host: {', '.join(hosts)}; add "
                    "--allowed-host NAME for the name reviewers type", fg="yellow", err=True)
    scheme = "https" if ssl_certfile else "http"
    if secure and not ssl_certfile:
        click.secho("secure cookies are on: browsers only send them over https. Serve behind a TLS proxy, or pass "
                    "--ssl-certfile/--ssl-keyfile (or --no-secure-cookies on a trusted network).", fg="yellow",
                    err=True)
    click.echo(f"contentgen studio for {run_dir} on {scheme}://{host}:{port}/ (serving Host: {', '.join(hosts)})",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


@click.command("sessions")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--revoke", "revoke_user", metavar="USER", help="end every session of USER")
@click.option("--revoke-all", is_flag=True, help="end every session (everyone signs in again)")
def sessions_cmd(run_dir: Path, revoke_user: str | None, revoke_all: bool) -> None:
    """List the studio's live sessions on a run, or end them (a user's, or everyone's)."""
    import datetime as dt

    from ..errors import StoreError
    from ..store import open_run_store, run_store_location
    from ..store.studio_db import StudioDB

    if run_store_location(Path(run_dir)) is None:
        raise StoreError("no run store here", file=str(run_dir), hint="point it at a run's --out folder")
    store = open_run_store(Path(run_dir))
    try:
        sdb = StudioDB(store.studio_conn())
        if revoke_user or revoke_all:
            n = sdb.sessions_revoke("revoked by an admin", None if revoke_all else revoke_user)
            who = "everyone" if revoke_all else revoke_user
            click.echo(f"ended {n} session(s) of {who}")
            return
        rows = sdb.sessions()
        if not rows:
            click.echo("no live sessions")
        for r in rows:
            at = dt.datetime.fromtimestamp(r["last_seen"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            click.echo(f"{r['id']}  {r['username']:<16} last seen {at}  from {r['client'] or '?'}")
    finally:
        store.close()
