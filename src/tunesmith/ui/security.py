"""Who may talk to the UI: an optional token, a Host check, and a header that cross-site pages cannot send.

- token (`tunesmith ui --token`, required when bound beyond loopback): open `/?token=...` once and
  the UI sets an HttpOnly cookie; API clients send `Authorization: Bearer ...` instead;
- Host header: only the bound address, localhost and 127.0.0.1 (a DNS-rebinding page names its own host);
- every POST carries `X-Tunesmith-UI: 1`, a custom header a page on another origin cannot add
  without a CORS preflight the UI never answers (so no cross-site request starts a job).
"""
from __future__ import annotations

from ..serve.security import is_loopback, token_ok

COOKIE = "tunesmith_ui_token"
HEADER = "x-tunesmith-ui"


def allowed_hosts(host: str, port: int) -> set[str]:
    names = {host, "localhost", "127.0.0.1", "[::1]"}
    return {n for n in names} | {f"{n}:{port}" for n in names}


def check_bind(host: str, token: str | None) -> None:
    from ..errors import TunesmithError

    if not is_loopback(host) and not token:
        raise TunesmithError(f"refusing to bind {host} without a token: anyone who reaches it could start jobs "
                             "and read files; add --token SECRET (or $TUNESMITH_UI_TOKEN), or bind 127.0.0.1")


def request_ok(headers, cookies, query, token: str | None) -> bool:
    """The token check for one request (always True without a token)."""
    if not token:
        return True
    return (token_ok(headers.get("authorization"), token) or token_ok(f"Bearer {cookies.get(COOKIE, '')}", token)
            or token_ok(f"Bearer {query.get('token', '')}", token))
