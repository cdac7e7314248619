"""Signed unsubscribe links.

The token in every unsubscribe link is ``<payload>.<signature>``: the payload
is the campaign id and member id (a JSON pair, base64url), the signature an HMAC-SHA256 of
them under a secret only the sender holds, cut to 128 bits. Anyone can read a
token; nobody without the secret can make one, or turn one member's token into
another's. ``verify_unsubscribe_token`` is what the unsubscribe endpoint calls:
it returns the campaign and member to unsubscribe, or None.

The secret comes from the environment variable the campaign names
(``links.secret_env``, default ``CONTENTGEN_LINK_SECRET``) or from a file
(``links.secret_file``, e.g. a mounted Kubernetes secret), never from the
campaign file itself. ``contentgen run`` refuses to start without one (exit 2);
``contentgen demo`` signs with a demo secret and says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from .config import Campaign, Links
from .errors import ConfigError

MIN_SECRET_CHARS = 16
_CONTEXT = b"contentgen unsubscribe v1\x00"
_SIG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_SIG_BYTES]


def unsubscribe_token(secret: bytes, campaign_id: str, member_id: str) -> str:
    """The token for one member of one campaign (URL-safe: letters, digits, '-', '_' and one '.')."""
    if not secret:
        raise ValueError("an unsubscribe token needs a secret")
    payload = json.dumps([campaign_id, member_id], ensure_ascii=False, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload))}"


class Unsubscribe(NamedTuple):
    campaign_id: str
    member_id: str


def verify_unsubscribe_token(token: str, secrets: bytes | Iterable[bytes]) -> Unsubscribe | None:
    """The campaign and member a token was made for, or None when it was not made with (one of) the
    secret(s). Pass several secrets while rotating: the current one and the one before it."""
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        return None
    body, sig = token.split(".")
    try:
        payload, given = _unb64(body), _unb64(sig)
    except (binascii.Error, ValueError):
        return None
    if len(given) != _SIG_BYTES:
        return None
    if not any(k and hmac.compare_digest(_signature(k, payload), given) for k in keys):
        return None
    try:
        campaign_id, member_id = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError):
        return None
    if not isinstance(campaign_id, str) or not isinstance(member_id, str):
        return None
    return Unsubscribe(campaign_id, member_id)


# ----------------------------------------------------------------------------- the secret

_HOW = ("set it before the run, e.g. export {env}=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""
        " (keep it: the unsubscribe endpoint verifies links with the same secret), or point links.secret_file "
        "in the campaign file at a file that holds it")


def _links(campaign: Campaign) -> Links:
    return getattr(campaign, "links", None) or Links()  # a campaign-like object without the key: the defaults


def link_secret(campaign: Campaign) -> bytes | None:
    """The campaign's secret from its environment variable or file; None when neither holds one."""
    links = _links(campaign)
    value = os.environ.get(links.secret_env, "").strip()
    if not value and links.secret_file is not None:
        try:
            st = os.stat(links.secret_file)
        except OSError:
            return None
        value = _read_secret_file(str(links.secret_file), st.st_mtime_ns, st.st_size)
    return value.encode() if value else None


@lru_cache(maxsize=8)
def _read_secret_file(path: str, mtime_ns: int, size: int) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def require_link_secret(campaign: Campaign) -> bytes:
    """The secret, or a ConfigError (exit 2) that says how to set one. Called before any model call."""
    links = _links(campaign)
    where = f"${links.secret_env}" + (f" or {links.secret_file}" if links.secret_file else "")
    secret = link_secret(campaign)
    if secret is None:
        if links.secret_file is not None and not Path(links.secret_file).is_file():
            raise ConfigError(f"links.secret_file {links.secret_file} does not exist", file=_src(campaign),
                              key="links.secret_file", hint=_HOW.format(env=links.secret_env))
        raise ConfigError(f"no secret to sign unsubscribe links with ({where} is not set): without one anyone "
                          "could unsubscribe any member", file=_src(campaign), key="links",
                          hint=_HOW.format(env=links.secret_env))
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"the unsubscribe-link secret in {where} is too short ({len(secret)} characters; at least "
                          f"{MIN_SECRET_CHARS})", file=_src(campaign), key="links",
                          hint=_HOW.format(env=links.secret_env))
    return secret


def _src(campaign: Campaign) -> str | None:
    source = getattr(campaign, "source", None)
    return str(source) if source else None


def demo_secret(campaign_id: str) -> str:
    """The secret ``contentgen demo`` signs with when none is set: derived from the campaign id, so it is
    known to anyone who reads this code. Fine for sample data, never for real members."""
    return "demo-" + hashlib.sha256(f"contentgen demo link secret\x00{campaign_id}".encode()).hexdigest()[:32]


def unsubscribe_url(campaign: Campaign, member_id: str) -> str:
    """The member's unsubscribe link (the campaign's ``brand.unsubscribe_url`` with a signed token)."""
    token = unsubscribe_token(require_link_secret(campaign), campaign.campaign_id, member_id)
    return campaign.brand.unsubscribe_url.format(token=token)
