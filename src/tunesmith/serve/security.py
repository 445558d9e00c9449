"""Safety rules: adapter paths confined to a root, safetensors only, bearer token, bind checks."""
from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from ..errors import TunesmithError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


class PathRejected(TunesmithError):
    """An adapter path that would leave the adapter root."""


def confine(root: str | Path, given: str | Path) -> Path:
    """Resolve `given` under `root`; refuse '..', symlink escapes and absolute paths outside it.

    Relative paths are taken relative to the root. Symlinks are resolved first, so a link inside
    the root that points outside is refused as well.

    Example:
        >>> confine("/srv/adapters", "sentiment")
        PosixPath('/srv/adapters/sentiment')
    """
    root_real = Path(root).expanduser().resolve()
    raw = str(given)
    if not raw or "\x00" in raw:
        raise PathRejected("adapter path is empty or holds a NUL byte")
    path = Path(raw)
    if ".." in path.parts:
        raise PathRejected(f"adapter path {raw!r} holds '..'; give a path inside the adapter root")
    target = (path if path.is_absolute() else root_real / path).resolve()
    if target != root_real and root_real not in target.parents:
        raise PathRejected(f"adapter path {raw!r} is outside the adapter root {root_real} "
                           "(absolute path or symlink leading out)")
    return target


def check_files_confined(root: str | Path, directory: Path) -> None:
    """Every file a load would read must itself resolve inside the root (symlinked files too)."""
    root_real = Path(root).expanduser().resolve()
    for f in directory.rglob("*"):
        if f.is_symlink() and root_real not in f.resolve().parents:
            raise PathRejected(f"{f.name} in {directory} is a symlink leading outside the adapter root")


def require_safetensors(model_dir: Path, weights: str) -> Path:
    """The safetensors weights file of a model/adapter directory; pickle checkpoints are never read."""
    path = model_dir / weights
    if path.is_file():
        return path
    pickled = [p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES] if model_dir.is_dir() else []
    hint = f" (found pickle file(s) {pickled}, which the server never loads)" if pickled else ""
    raise TunesmithError(f"{model_dir}: no {weights}{hint}; save it with save_pretrained(safe_serialization=True)")


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
        (True, False)
    """
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def admin_token(configured: str | None) -> str | None:
    return configured or os.environ.get("TUNESMITH_ADMIN_TOKEN") or None


def check_bind(host: str, admin_enabled: bool, token: str | None, allow_open_admin: bool) -> None:
    """Refuse a public bind while anyone could load or unload adapters."""
    if is_loopback(host) or not admin_enabled or token or allow_open_admin:
        return
    raise TunesmithError(f"refusing to bind {host} with the admin endpoints open: set an admin token "
                         "(--server.admin_token or $TUNESMITH_ADMIN_TOKEN), turn them off "
                         "(--server.admin_enabled=false), or pass --server.allow_open_admin=true")


def token_ok(header: str | None, token: str | None) -> bool:
    """Constant-time check of an `Authorization: Bearer ...` header (always True without a token)."""
    if not token:
        return True
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), token.encode())
