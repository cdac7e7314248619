"""Sign-in, roles, sessions and CSRF for the studio.

Accounts live in a YAML file (``--users``)::

    users:
      dana:
        password: "scrypt$16384$8$1$<salt hex>$<hash hex>"   # python -m contentgen.web.auth dana
        roles: [reviewer]            # reviewer | copywriter (default: both)

With no users file, ``contentgen serve`` makes one account, ``admin``, whose
password is a random token printed at start-up.

Sessions are signed cookies (Starlette's ``SessionMiddleware``, itsdangerous).
Every POST must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``); ``protect`` checks it, and the sign-in, before the handler
runs.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..errors import ConfigError

ROLES = ("reviewer", "copywriter")
_N, _R, _P = 2 ** 14, 8, 1


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


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...] = ROLES


@dataclass
class Accounts:
    hashes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def authenticate(self, name: str, password: str) -> User | None:
        stored = self.hashes.get(name)
        if stored is None:
            verify_password(password, hash_password("x", salt=b"0" * 16))  # same work for unknown names
            return None
        if not verify_password(password, stored):
            return None
        return User(name, self.roles.get(name, ROLES))

    def user(self, name: str | None) -> User | None:
        if not name or name not in self.hashes:
            return None
        return User(name, self.roles.get(name, ROLES))

    @classmethod
    def load(cls, path: Path) -> Accounts:
        path = Path(path)
        if not path.exists():
            raise ConfigError("users file not found", file=str(path),
                              hint="create it: python -m contentgen.web.auth NAME >> users.yaml")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"users file is not valid YAML: {e}", file=str(path)) from None
        users = raw.get("users") if isinstance(raw, dict) else None
        if not isinstance(users, dict) or not users:
            raise ConfigError("users file needs a 'users:' mapping of name -> {password, roles}", file=str(path))
        acc = cls()
        for name, spec in users.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("password"), str):
                raise ConfigError(f"user {name!r} needs a hashed 'password'", file=str(path), key=f"users.{name}",
                                  hint="make one with: python -m contentgen.web.auth NAME")
            if not spec["password"].startswith(("scrypt$", "pbkdf2_sha256$")):
                raise ConfigError(f"user {name!r}: the password must be a hash, never plain text", file=str(path),
                                  key=f"users.{name}.password", hint="python -m contentgen.web.auth NAME")
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


# ------------------------------------------------------------------------------------------ CSRF


def csrf_token(request: Request) -> str:
    tok = request.session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(32)
        request.session["csrf"] = tok
    return tok


async def csrf_ok(request: Request) -> bool:
    want = request.session.get("csrf")
    if not want:
        return False
    got = request.headers.get("x-csrf-token")
    if got is None:
        form = await request.form()
        got = form.get("csrf")
    return isinstance(got, str) and hmac.compare_digest(got, want)


def current_user(request: Request) -> User | None:
    return request.app.state.accounts.user(request.session.get("user"))


Handler = Callable[[Request], Awaitable[Response]]


def protect(handler: Handler, *, role: str | None = None, login: bool = True) -> Handler:
    """Wrap an endpoint: signed-in (and role) required; CSRF token required on every POST."""

    async def wrapped(request: Request) -> Response:
        if request.method == "POST" and not await csrf_ok(request):
            return PlainTextResponse("CSRF token missing or wrong: reload the page and try again", status_code=403)
        if login:
            user = current_user(request)
            if user is None:
                if request.method == "GET":
                    return RedirectResponse(f"/login?next={quote(request.url.path + ('?' + request.url.query if request.url.query else ''))}", 303)
                return PlainTextResponse("sign in first", status_code=401)
            if role and role not in user.roles:
                return PlainTextResponse(f"this needs the {role} role", status_code=403)
            request.state.user = user
        return await handler(request)

    wrapped.__name__ = getattr(handler, "__name__", "endpoint")
    wrapped.__doc__ = handler.__doc__
    wrapped.protected = True  # type: ignore[attr-defined]
    return wrapped


def _safe_next(url: str | None) -> str:
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


async def login_page(request: Request) -> Response:
    from .app import render

    if request.method == "POST":
        form = await request.form()
        user = request.app.state.accounts.authenticate(str(form.get("username", "")), str(form.get("password", "")))
        if user is None:
            return render(request, "login.html", {"error": "Wrong user name or password.",
                                                  "next": _safe_next(str(form.get("next") or ""))},
                          status_code=401)
        request.session.clear()  # a fresh session (and CSRF token) on sign-in: no fixation
        request.session["user"] = user.name
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse(_safe_next(str(form.get("next") or "/")), 303)
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", 303)


def main(argv: list[str] | None = None) -> None:
    """Print a users.yaml entry with a scrypt-hashed password: python -m contentgen.web.auth NAME [ROLE...]."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m contentgen.web.auth NAME [reviewer] [copywriter]", file=sys.stderr)
        raise SystemExit(2)
    name, roles = args[0], args[1:] or list(ROLES)
    pw = getpass.getpass(f"password for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(pw) < 8:
        print("use at least 8 characters", file=sys.stderr)
        raise SystemExit(2)
    print(f"  {name}:\n    password: \"{hash_password(pw)}\"\n    roles: [{', '.join(roles)}]")


if __name__ == "__main__":
    main()
