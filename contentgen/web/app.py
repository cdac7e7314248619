"""The studio application: ``create_app(run_dir, ...)`` -> a Starlette app.

Screens (one module each): ``dashboard``, ``queue``, ``detail`` (a message's
trail and the reviewer's decision), ``audit`` (decision log, CSV, re-export),
``preview`` (copywriters' side-by-side variants). Templates are Jinja with
autoescape on: model and member text is always data, never markup.

Every endpoint reads its form on the event loop and then does its work (the
session check, store queries, gates, rendering) in a worker thread
(``auth.protect``); each thread has its own connection to the run store the
batch job uses (SQLite ``RUN_DIR/run.db``, or the PostgreSQL database its
``store.json`` names) and a ``StudioDB`` over it. On PostgreSQL the studio of
a shard's folder shows every shard of the run (one database, one run). Every
form POST answers with a redirect (post/redirect/get); what the next page must
say travels in the server-side session (``auth.flash``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import StoreError
from ..store import open_run_store
from . import auth
from ..store.studio_db import StudioDB
from .highlight import highlight, message_view

HERE = Path(__file__).resolve().parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
log = logging.getLogger("contentgen.studio")


@dataclass
class StudioConfig:
    run_dir: Path
    campaign_path: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    variants_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Studio:
    """Per-app state: the run store (one connection per thread) and the campaign context (lazy)."""

    def __init__(self, cfg: StudioConfig):
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        from ..store import run_store_location

        if run_store_location(self.run_dir) is None:
            raise StoreError("no run store here", file=str(self.run_dir),
                             hint="point `contentgen serve` at a run's --out folder (it holds run.db, or "
                                  "store.json for a PostgreSQL store)")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stores: list[Any] = []
        self._campaign = None
        self._campaign_error: str | None = None
        self.stack = contextlib.ExitStack()
        self.campaign_id = self.sdb.meta("campaign_id") or self.run_dir.name  # migrates once, now
        from ..metrics import studio_metrics

        # GET /metrics (Prometheus): the run's figures over every shard the studio shows
        self.metrics = studio_metrics(lambda: self.sdb, self.run_dir)

    @property
    def store(self) -> Any:
        """This thread's run store (a ``RunStore``; its own connection)."""
        s = getattr(self._local, "store", None)
        if s is not None and getattr(s.db, "broken", False):  # a PostgreSQL connection the server dropped
            with self._lock:
                self._stores = [x for x in self._stores if x is not s]
            s.close()
            s = None
        if s is None:
            s = open_run_store(self.run_dir)
            self._local.store = s
            self._local.sdb = StudioDB(s.studio_conn())
            with self._lock:
                self._stores.append(s)
        return s

    @property
    def db(self):
        """This thread's studio connection (``store.dialect.Conn``), what ``queue_index`` takes."""
        return self.sdb.c

    @property
    def sdb(self) -> StudioDB:
        self.store
        return self._local.sdb

    def campaign_path(self) -> Path | None:
        if self.cfg.campaign_path:
            return Path(self.cfg.campaign_path)
        p = self.sdb.meta("campaign_path")
        return Path(p) if p else None

    def campaign(self):
        """The CampaignContext (catalog, offers, planner, rules), or None with ``campaign_error`` set."""
        with self._lock:
            if self._campaign is None and self._campaign_error is None:
                from .campaign import CampaignContext

                path = self.campaign_path()
                if path is None:
                    self._campaign_error = ("this run store does not say which campaign it ran; "
                                            "start the studio with --campaign FILE")
                else:
                    try:
                        self._campaign = CampaignContext(path, self)
                        self._campaign.index.start()
                    except Exception as e:  # a missing/broken campaign must not take the queue down
                        render_err = getattr(e, "render", None)
                        self._campaign_error = render_err() if render_err else f"{type(e).__name__}: {e}"
            return self._campaign

    @property
    def campaign_error(self) -> str | None:
        return self._campaign_error

    def render_worker(self):
        """The child process that renders copywriters' templates (time- and size-bounded), started once."""
        from .sandbox import RenderWorker

        with self._lock:
            if getattr(self, "_worker", None) is None:
                self._worker = RenderWorker()
                self.stack.callback(self._worker.close)
            return self._worker

    def close(self) -> None:
        self.stack.close()
        with self._lock:
            stores, self._stores = self._stores, []
        for s in stores:
            s.close()


# ------------------------------------------------------------------------------------------ templates


def _fmt_time(ts: float | str | None) -> str:
    if ts in (None, ""):
        return ""
    if isinstance(ts, str):
        return ts
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _money(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"${v:,.4f}" if v < 1 else f"${v:,.2f}"


def _pretty_json(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(time=_fmt_time, money=_money, pretty_json=_pretty_json, highlight=highlight,
                       tojson_compact=lambda v: json.dumps(v, ensure_ascii=False),
                       num=lambda v: f"{v:,}" if isinstance(v, int) else v)
    env.globals.update(message_view=message_view, Markup=Markup)
    return env


def render(request: Request, template: str, ctx: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    env: jinja2.Environment = request.app.state.env
    studio: Studio = request.app.state.studio
    user = auth.current_user(request)
    base = {"request": request, "user": user, "csrf": auth.csrf_token(request), "campaign_id": studio.campaign_id,
            "run_dir": str(studio.run_dir), "path": request.url.path}
    base.update(ctx or {})
    return HTMLResponse(env.get_template(template).render(**base), status_code=status_code)


def bad_request(message: str, status: int = 400) -> HTTPException:
    return HTTPException(status, message)


# ------------------------------------------------------------------------------------------ app

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


class SecurityHeaders:
    """CSP (no inline script anywhere; srcdoc frames inherit it), no sniffing, no framing, no referrer;
    HSTS when the cookies are https-only."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.headers = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                        (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
                        (b"cache-control", b"no-store")]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    env: jinja2.Environment = request.app.state.env
    titles = {400: "Bad request", 401: "Sign in first", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
              409: "Not possible now", 413: "Too large", 429: "Too many requests"}
    html = env.get_template("error.html").render(
        title=titles.get(exc.status_code, f"Error {exc.status_code}"), message=exc.detail, user=None, csrf="",
        campaign_id=request.app.state.studio.campaign_id, path=request.url.path, request=request)
    return HTMLResponse(html, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("studio: %s %s failed", request.method, request.url.path)
    return PlainTextResponse("Something went wrong on the server; the error is in the studio's log.", 500)


def default_allowed_hosts(host: str) -> list[str]:
    """Loopback names, plus the bound host when it is a name or a specific address."""
    hosts = list(LOOPBACK_HOSTS)
    if host not in ("0.0.0.0", "::", "") and host not in hosts:
        hosts.append(host)
    return hosts


def create_app(run_dir: Path, *, accounts: auth.Accounts, campaign_path: Path | None = None,
               base_url: str | None = None, api_key: str | None = None, model: str | None = None,
               variants_dir: Path | None = None, secure_cookies: bool = False,
               allowed_hosts: Sequence[str] | None = None, policy: auth.SessionPolicy | None = None) -> Starlette:
    """The studio over ``run_dir``. ``allowed_hosts``: Host header values served (default: loopback names;
    ``*`` serves any); ``secure_cookies``: https-only, ``__Host-`` cookies and HSTS."""
    from . import audit, dashboard, detail, preview, queue

    cfg = StudioConfig(Path(run_dir), campaign_path=campaign_path, base_url=base_url, api_key=api_key, model=model,
                       variants_dir=variants_dir)
    studio = Studio(cfg)
    policy = policy or auth.SessionPolicy()
    if secure_cookies != policy.secure:
        policy = auth.SessionPolicy(**{**policy.__dict__, "secure": secure_cookies})
    P = auth.protect

    def home(request: Request, form) -> Response:
        return RedirectResponse("/queue", 303)

    def metrics(request: Request) -> Response:  # Prometheus scrapes without a session: counts only, no member data
        from ..metrics import CONTENT_TYPE

        return Response(studio.metrics.exposition(), media_type=CONTENT_TYPE)

    routes = [
        Route("/", P(home)),
        Route("/metrics", metrics),
        Route("/login", P(auth.login_page, login=False), methods=["GET", "POST"]),
        Route("/logout", P(auth.logout, login=False), methods=["POST"]),
        Route("/dashboard", P(dashboard.page)),
        Route("/queue", P(queue.page)),
        Route("/review/{key:path}/decide", P(detail.decide, role="reviewer"), methods=["POST"]),
        Route("/review/{key:path}/check", P(detail.recheck, role="reviewer"), methods=["POST"]),
        Route("/review/{key:path}", P(detail.page)),
        Route("/audit", P(audit.page)),
        Route("/audit.csv", P(audit.csv_download)),
        Route("/export", P(audit.reexport, role="reviewer"), methods=["POST"]),
        Route("/preview", P(preview.page, role="copywriter")),
        Route("/preview/variants/new", P(preview.variant_form, role="copywriter")),
        Route("/preview/variants", P(preview.variant_save, role="copywriter"), methods=["POST"]),
        Route("/preview/variants/{vid}", P(preview.variant_view, role="copywriter")),
        Route("/preview/run", P(preview.run, role="copywriter"), methods=["POST"]),
        Route("/preview/history", P(preview.history, role="copywriter")),
        Route("/preview/c/{cid}", P(preview.comparison, role="copywriter")),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    hosts = list(allowed_hosts) if allowed_hosts else list(LOOPBACK_HOSTS)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
                  Middleware(SecurityHeaders, hsts=secure_cookies)]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            studio.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.studio = studio
    app.state.accounts = accounts
    app.state.policy = policy
    app.state.env = make_env()
    if variants_dir:
        preview.import_variants_dir(studio, Path(variants_dir))
    return app
