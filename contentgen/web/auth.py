"""Sign-in, roles, server-side sessions, sign-in throttling and CSRF for the studio.

Accounts live in a YAML file (``--users``), re-read when it changes::

    users:
      dana:
        password: "scrypt$16384$8$1$<salt hex>$<hash hex>"   # python -m contentgen.web.auth dana
        roles: [reviewer]            # reviewer | override | copywriter (default: all three)

``reviewer`` decides (approve/reject, edit and re-check); ``override`` may
approve a message that fails an error rule, naming each rule with a reason;
``copywriter`` previews prompt variants. With no users file, ``contentgen
serve`` makes one account, ``admin`` (all roles), whose password is printed.

Sessions are rows in the run store (``studio_sessions``); the cookie holds a
random token whose SHA-256 is the row's key. A session ends at sign-out, when
the account's password hash changes (or the account goes), after
``idle_minutes`` without a request or ``max_hours`` after sign-in, and when an
admin runs ``contentgen sessions revoke``. Sign-in failures are counted per
user name (known or not) and per client address; past the limit both are
locked for a while, answered with 429 before any password is hashed. Password
hashing runs in worker threads (at most two at once), never on the event loop,
and an unknown user name costs one hash, as a known one does.

Every POST carries the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``); the sign-in form uses a double-submit cookie instead.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import yaml
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..errors import ConfigError

log = logging.getLogger("contentgen.studio")

ROLES = ("reviewer", "override", "copywriter")
_N, _R, _P = 2 ** 14, 8, 1
MAX_NAME, MAX_PASSWORD = 64, 1024
LOGIN_CSRF_COOKIE = "contentgen_login"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, *params = stored.split("$")
        if algo == "scrypt":
            n, r, p, salt, want = params
            got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                 dklen=len(want) // 2)
        elif algo == "pbkdf2_sha256":
            iters, salt, want = params
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iters))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), want)


def fingerprint(stored_hash: str) -> str:
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:24]


#: at most two password hashes at once (each scrypt takes ~100 ms and 16 MiB), off the event loop
_HASH_SLOTS = threading.BoundedSemaphore(2)
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...] = ROLES

    def can(self, role: str) -> bool:
        return role in self.roles


@dataclass
class Accounts:
    hashes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: Path | None = None
    _stamp: tuple[float, int] | None = None
    _checked: float = 0.0

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, or None. Costs one password hash whether or not the name exists (no name oracle)."""
        self.refresh()
        stored = self.hashes.get(name) if len(name) <= MAX_NAME else None
        with _HASH_SLOTS:
            ok = verify_password(password[:MAX_PASSWORD], stored if stored is not None else _dummy_hash())
        if stored is None or not ok or len(password) > MAX_PASSWORD:
            return None
        return User(name, self.roles.get(name, ROLES))

    def user(self, name: str | None) -> User | None:
        if not name or name not in self.hashes:
            return None
        return User(name, self.roles.get(name, ROLES))

    def fingerprint(self, name: str) -> str | None:
        h = self.hashes.get(name)
        return fingerprint(h) if h else None

    def refresh(self, every: float = 1.0) -> None:
        """Re-read the users file when it changed (a changed password then ends that user's sessions)."""
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._checked < every:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
        except OSError:
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        try:
            fresh = Accounts.load(self.path)
        except ConfigError as e:
            log.warning("users file changed but cannot be read; keeping the accounts loaded before: %s", e.render())
            self._stamp = stamp
            return
        self.hashes, self.roles, self._stamp = fresh.hashes, fresh.roles, stamp

    @classmethod
    def load(cls, path: Path) -> Accounts:
        path = Path(path)
        if not path.exists():
            raise ConfigError("users file not found", file=str(path),
                              hint="create it: python -m contentgen.web.auth NAME >> users.yaml")
        try:
            st = os.stat(path)
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"users file is not valid YAML: {e}", file=str(path)) from None
        users = raw.get("users") if isinstance(raw, dict) else None
        if not isinstance(users, dict) or not users:
            raise ConfigError("users file needs a 'users:' mapping of name -> {password, roles}", file=str(path))
        acc = cls(path=path, _stamp=(st.st_mtime, st.st_size), _checked=time.monotonic())
        for name, spec in users.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("password"), str):
                raise ConfigError(f"user {name!r} needs a hashed 'password'", file=str(path), key=f"users.{name}",
                                  hint="make one with: python -m contentgen.web.auth NAME")
            if not spec["password"].startswith(("scrypt$", "pbkdf2_sha256$")):
                raise ConfigError(f"user {name!r}: the password must be a hash, never plain text", file=str(path),
                                  key=f"users.{name}.password", hint="python -m contentgen.web.auth NAME")
            if len(str(name)) > MAX_NAME:
                raise ConfigError(f"user name {str(name)[:20]!r}... is longer than {MAX_NAME} characters",
                                  file=str(path), key="users")
            roles = tuple(spec.get("roles") or ROLES)
            bad = [r for r in roles if r not in ROLES]
            if bad:
                raise ConfigError(f"user {name!r}: unknown role(s) {bad}", file=str(path),
                                  key=f"users.{name}.roles", hint=f"use {', '.join(ROLES)}")
            acc.hashes[str(name)] = spec["password"]
            acc.roles[str(name)] = roles
        return acc

    @classmethod
    def single(cls, name: str, password: str) -> Accounts:
        return cls({name: hash_password(password)}, {name: ROLES})


# ------------------------------------------------------------------------------------------ sessions


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: float = 30 * 60
    max_s: float = 12 * 3600
    secure: bool = False
    touch_every_s: float = 60.0
    #: sign-in failures before a lock, and for how long
    user_failures: int = 5
    ip_failures: int = 20
    window_s: float = 15 * 60
    lock_s: float = 15 * 60

    @property
    def cookie(self) -> str:
        # __Host-: the browser only keeps it from https, for this host, path /
        return "__Host-contentgen_studio" if self.secure else "contentgen_studio"


@dataclass
class Session:
    token_hash: str
    user: User
    csrf: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_of(request: Request) -> Session | None:
    """The request's live session (checked against the store, the users file and the timeouts), or None.

    Runs in a worker thread (it reads the store)."""
    cached = request.scope.get("contentgen.session", False)
    if cached is not False:
        return cached
    studio = request.app.state.studio
    policy: SessionPolicy = request.app.state.policy
    token = request.cookies.get(policy.cookie)
    sess = None
    if token and len(token) < 200:
        th = _token_hash(token)
        row = studio.sdb.session(th)
        if row is not None and row["revoked_at"] is None:
            accounts: Accounts = request.app.state.accounts
            accounts.refresh()
            user = accounts.user(row["username"])
            now = time.time()
            why = None
            if user is None:
                why = "the account was removed"
            elif accounts.fingerprint(user.name) != row["password_fp"]:
                why = "the password changed"
            elif now - row["last_seen"] > policy.idle_s:
                why = "idle timeout"
            elif now - row["created_at"] > policy.max_s:
                why = "session too old"
            if why:
                studio.sdb.session_revoke(th, why)
                request.scope["contentgen.ended"] = why
            else:
                if now - row["last_seen"] > policy.touch_every_s:
                    studio.sdb.session_touch(th, now)
                sess = Session(th, user, row["csrf"])
        elif row is not None:
            request.scope["contentgen.ended"] = row["revoked_why"] or "signed out"
    request.scope["contentgen.session"] = sess
    return sess


def current_user(request: Request) -> User | None:
    s = request.scope.get("contentgen.session")
    return s.user if s else None


def csrf_token(request: Request) -> str:
    s = request.scope.get("contentgen.session")
    if s:
        return s.csrf
    return request.scope.get("contentgen.login_csrf") or request.cookies.get(LOGIN_CSRF_COOKIE) or ""


def _posted_csrf(request: Request, form: FormData | None) -> str | None:
    got = request.headers.get("x-csrf-token")
    if got is None and form is not None:
        v = form.get("csrf")
        got = v if isinstance(v, str) else None
    return got


def flash(request: Request, payload: dict[str, Any]) -> None:
    """One message (and form state) for the next page the session sees (post/redirect/get)."""
    s = request.scope.get("contentgen.session")
    if s:
        request.app.state.studio.sdb.flash_set(s.token_hash, payload)


def pop_flash(request: Request) -> dict[str, Any] | None:
    s = request.scope.get("contentgen.session")
    return request.app.state.studio.sdb.flash_pop(s.token_hash) if s else None


Handler = Callable[[Request, FormData | None], Response]


async def read_form(request: Request) -> FormData | None:
    if request.method != "POST":
        return None
    return await request.form(max_files=0, max_fields=400, max_part_size=256 * 1024)


def protect(handler: Handler, *, role: str | None = None, login: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: the form is read on the event loop, then session, CSRF, role and the handler itself
    (which reads the store and renders) run in a worker thread."""

    def sync(request: Request, form: FormData | None) -> Response:
        if login:
            sess = session_of(request)
            if request.method == "POST":
                got = _posted_csrf(request, form)
                if sess is None:
                    return PlainTextResponse("sign in first (your session ended or never began)", status_code=401)
                if not got or not hmac.compare_digest(got, sess.csrf):
                    return PlainTextResponse("CSRF token missing or wrong: reload the page and try again",
                                             status_code=403)
            if sess is None:
                if request.method == "GET":
                    target = request.url.path + ("?" + request.url.query if request.url.query else "")
                    ended = request.scope.get("contentgen.ended")
                    extra = f"&ended={quote(ended)}" if ended else ""
                    return RedirectResponse(f"/login?next={quote(target)}{extra}", 303)
                return PlainTextResponse("sign in first", status_code=401)
            if role and not sess.user.can(role):
                return PlainTextResponse(f"this needs the {role} role", status_code=403)
        return handler(request, form)

    async def wrapped(request: Request) -> Response:
        form = await read_form(request)
        return await anyio.to_thread.run_sync(sync, request, form)

    wrapped.__name__ = getattr(handler, "__name__", "endpoint")
    wrapped.__doc__ = handler.__doc__
    wrapped.protected = True  # type: ignore[attr-defined]
    return wrapped


def _safe_next(url: str | None) -> str:
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or len(url) > 2000:
        return "/"
    return url


def _set_login_cookie(request: Request, resp: Response) -> None:
    tok = request.scope.get("contentgen.login_csrf")
    if tok and request.cookies.get(LOGIN_CSRF_COOKIE) != tok:
        policy: SessionPolicy = request.app.state.policy
        resp.set_cookie(LOGIN_CSRF_COOKIE, tok, httponly=True, samesite="strict", secure=policy.secure, path="/")


def login_page(request: Request, form: FormData | None) -> Response:
    from .app import render

    studio = request.app.state.studio
    policy: SessionPolicy = request.app.state.policy
    if request.method == "GET":
        if session_of(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        tok = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not tok or len(tok) > 100:
            tok = secrets.token_urlsafe(32)
        request.scope["contentgen.login_csrf"] = tok
        ended = request.query_params.get("ended")
        resp = render(request, "login.html", {"next": _safe_next(request.query_params.get("next")),
                                              "notice": f"Your session ended ({ended}). Sign in again."
                                              if ended else None})
        _set_login_cookie(request, resp)
        return resp
    assert form is not None
    want = request.cookies.get(LOGIN_CSRF_COOKIE)
    got = _posted_csrf(request, form)
    if not want or not got or not hmac.compare_digest(got, want):
        return PlainTextResponse("CSRF token missing or wrong: reload the sign-in page and try again", 403)
    name = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    nxt = _safe_next(str(form.get("next") or ""))
    client = request.client.host if request.client else "?"
    subjects = [f"user:{name.lower()[:MAX_NAME + 1]}", f"ip:{client}"]
    now = time.time()
    locked = studio.sdb.login_locked_until(subjects, now)
    if locked:
        wait = max(1, int(locked - now))
        resp = render(request, "login.html", {"error": f"Too many failed sign-ins for this name or address. Try "
                                                       f"again in {(wait + 59) // 60} minute(s).", "next": nxt}, 429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    accounts: Accounts = request.app.state.accounts
    user = accounts.authenticate(name, password)
    if user is None:
        studio.sdb.login_failed(subjects[0], now, limit=policy.user_failures, window=policy.window_s,
                                lock_for=policy.lock_s)
        studio.sdb.login_failed(subjects[1], now, limit=policy.ip_failures, window=policy.window_s,
                                lock_for=policy.lock_s)
        log.info("studio: failed sign-in for %r from %s", name[:MAX_NAME], client)
        return render(request, "login.html", {"error": "Wrong user name or password.", "next": nxt}, 401)
    studio.sdb.login_succeeded(subjects[:1])
    token = secrets.token_urlsafe(32)
    studio.sdb.session_create(_token_hash(token), user.name, secrets.token_urlsafe(32),
                              accounts.fingerprint(user.name) or "", client=client,
                              user_agent=request.headers.get("user-agent", ""))
    if secrets.randbelow(50) == 0:  # now and then, forget what no longer matters
        studio.sdb.sessions_purge(now - 7 * 86400)
        studio.sdb.login_failures_purge(now - 86400)
    resp = RedirectResponse(nxt, 303)
    resp.set_cookie(policy.cookie, token, httponly=True, samesite="strict", secure=policy.secure, path="/")
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


def logout(request: Request, form: FormData | None) -> Response:
    """Ends the session (a POST with its CSRF token); with no live session there is nothing to end."""
    s = session_of(request)
    if s is not None:
        got = _posted_csrf(request, form)
        if not got or not hmac.compare_digest(got, s.csrf):
            return PlainTextResponse("CSRF token missing or wrong: reload the page and try again", status_code=403)
        request.app.state.studio.sdb.session_revoke(s.token_hash, "signed out")
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(request.app.state.policy.cookie, path="/")
    return resp


def main(argv: list[str] | None = None) -> None:
    """Print a users.yaml entry with a scrypt-hashed password: python -m contentgen.web.auth NAME [ROLE...]."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m contentgen.web.auth NAME [reviewer] [override] [copywriter]", file=sys.stderr)
        raise SystemExit(2)
    name, roles = args[0], args[1:] or list(ROLES)
    bad = [r for r in roles if r not in ROLES]
    if bad:
        print(f"unknown role(s) {bad}: use {', '.join(ROLES)}", file=sys.stderr)
        raise SystemExit(2)
    pw = getpass.getpass(f"password for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(pw) < 8:
        print("use at least 8 characters", file=sys.stderr)
        raise SystemExit(2)
    print(f"  {name}:\n    password: \"{hash_password(pw)}\"\n    roles: [{', '.join(roles)}]")


if __name__ == "__main__":
    main()
