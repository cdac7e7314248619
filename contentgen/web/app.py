"""The studio application: ``create_app(run_dir, ...)`` -> a Starlette app.

Screens (one module each): ``dashboard``, ``queue``, ``detail`` (a message's
trail and the reviewer's decision), ``audit`` (decision log, CSV, re-export),
``preview`` (copywriters' side-by-side variants). Templates are Jinja with
autoescape on: model and member text is always data, never markup.

The app reads and writes the run store the batch job uses (``RUN_DIR/run.db``);
each thread gets its own SQLite connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import StoreError
from ..store import SqliteStore
from . import auth
from .highlight import highlight, message_view

HERE = Path(__file__).resolve().parent


@dataclass
class StudioConfig:
    run_dir: Path
    campaign_path: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    variants_dir: Path | None = None
    secure_cookies: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Studio:
    """Per-app state: the run store (one connection per thread) and the campaign context (lazy)."""

    def __init__(self, cfg: StudioConfig):
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        db = self.run_dir / "run.db"
        if not db.exists():
            raise StoreError("no run store here", file=str(self.run_dir),
                             hint="point `contentgen serve` at a run's --out folder (it holds run.db)")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._campaign = None
        self._campaign_error: str | None = None
        self.stack = contextlib.ExitStack()
        self.store  # migrate once, now (m002_studio)
        from ..metrics import studio_metrics

        self.metrics = studio_metrics(lambda: self.store, self.run_dir)  # GET /metrics (Prometheus)

    @property
    def store(self) -> SqliteStore:
        s = getattr(self._local, "store", None)
        if s is None:
            s = SqliteStore(self.run_dir / "run.db")
            self._local.store = s
        return s

    @property
    def db(self):
        return self.store.db

    def campaign_path(self) -> Path | None:
        if self.cfg.campaign_path:
            return Path(self.cfg.campaign_path)
        p = self.store.get_meta("campaign_path")
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
                    except Exception as e:  # a missing/broken campaign must not take the queue down
                        render_err = getattr(e, "render", None)
                        self._campaign_error = render_err() if render_err else f"{type(e).__name__}: {e}"
            return self._campaign

    @property
    def campaign_error(self) -> str | None:
        return self._campaign_error

    def close(self) -> None:
        self.stack.close()


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
                       tojson_compact=lambda v: json.dumps(v, ensure_ascii=False))
    env.globals.update(message_view=message_view, Markup=Markup)
    return env


def render(request: Request, template: str, ctx: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    env: jinja2.Environment = request.app.state.env
    studio: Studio = request.app.state.studio
    user = getattr(request.state, "user", None) or auth.current_user(request)
    base = {"request": request, "user": user, "csrf": auth.csrf_token(request),
            "campaign_id": studio.store.get_meta("campaign_id") or studio.run_dir.name,
            "run_dir": str(studio.run_dir), "path": request.url.path}
    base.update(ctx or {})
    return HTMLResponse(env.get_template(template).render(**base), status_code=status_code)


# ------------------------------------------------------------------------------------------ app

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


class SecurityHeaders:
    """CSP (no inline script anywhere; srcdoc frames inherit it), no sniffing, no framing, no referrer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
                            (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)



def create_app(run_dir: Path, *, accounts: auth.Accounts, campaign_path: Path | None = None,
               base_url: str | None = None, api_key: str | None = None, model: str | None = None,
               variants_dir: Path | None = None, secret: str | None = None,
               secure_cookies: bool = False) -> Starlette:
    from . import audit, dashboard, detail, preview, queue

    cfg = StudioConfig(Path(run_dir), campaign_path=campaign_path, base_url=base_url, api_key=api_key, model=model,
                       variants_dir=variants_dir, secure_cookies=secure_cookies)
    studio = Studio(cfg)
    P = auth.protect

    async def home(request: Request) -> Response:
        return RedirectResponse("/dashboard", 303)

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
        Route("/preview/c/{cid:int}", P(preview.comparison, role="copywriter")),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    secret = secret or os.environ.get("CONTENTGEN_STUDIO_SECRET") or secrets.token_urlsafe(32)
    middleware = [Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=secret, session_cookie="contentgen_studio",
                             same_site="strict", https_only=secure_cookies, max_age=12 * 3600)]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            studio.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.studio = studio
    app.state.accounts = accounts
    app.state.env = make_env()
    if variants_dir:
        preview.import_variants_dir(studio, Path(variants_dir))
    return app
