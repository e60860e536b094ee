"""Which client a browser is: a signed session cookie, set by registering or signing in.

No passwords in this scope: signing in takes a client's email and client number together.
The cookie holds the client id and an HMAC-SHA256 of it (stdlib `hmac`, no new dependency:
Starlette's SessionMiddleware would need `itsdangerous` as a direct dependency and would sign
every response's session, where one value is all the Shop keeps). A browser cannot make or
change the cookie without the key, so a client number alone no longer acts as that client.

The key comes from `ORDERFLOW_SESSION_SECRET`, or else is made once and kept in
`<data_dir>/shop-session.key`: every worker of `--workers N` and every restart reads the same
key, so sessions survive a restart. Only when that file cannot be written is the key random for
this process (sessions then last as long as the process; a warning says so).
"""

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from fastapi import Request, Response

from orderflow.kit.settings import Settings

log = logging.getLogger(__name__)
COOKIE = "shop_session"
KEY_FILE = "shop-session.key"
MAX_AGE_S = 30 * 24 * 3600
PURPOSE = b"orderflow shop session v1:"


def session_key(settings: Settings) -> bytes:
    """The signing key: configured, kept in the data dir, or (failing both) random."""
    if settings.session_secret:
        return settings.session_secret.encode()
    path = Path(settings.data_dir) / KEY_FILE
    try:
        return _kept_key(path)
    except OSError as exc:
        log.warning("no session key file at %s (%s): sessions last one process", path, exc)
        return secrets.token_bytes(32)


def _kept_key(path: Path) -> bytes:
    """Read the key file, or create it; O_EXCL makes racing workers agree on one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it
            if key := path.read_bytes().strip():
                return key
            os.sched_yield()
        raise OSError(f"{path} stays empty") from None
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _signature(key: bytes, client_id: int) -> str:
    digest = hmac.new(key, PURPOSE + str(client_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signed(key: bytes, client_id: int) -> str:
    return f"{client_id}.{_signature(key, client_id)}"


def client_of(request: Request) -> int | None:
    """The client id this browser's cookie proves, or None (no cookie, or a forged one)."""
    raw = request.cookies.get(COOKIE, "")
    number, _, signature = raw.partition(".")
    if not (number.isascii() and number.isdigit()) or not 1 <= int(number) < 2**63:
        return None
    expected = _signature(request.app.state.session_key, int(number))
    return int(number) if hmac.compare_digest(signature, expected) else None


def start(request: Request, response: Response, client_id: int) -> None:
    value = signed(request.app.state.session_key, client_id)
    response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, samesite="lax", httponly=True)


def end(response: Response) -> None:
    response.delete_cookie(COOKIE)
