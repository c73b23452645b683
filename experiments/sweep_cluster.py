"""Reaching a running Ray cluster (``sweep run --address``) in seconds, with a one-line error
that names the cause, instead of Ray's tens of seconds of retries.

Ray's ``ray start --head`` turns token authentication on when a token is available on the head
(``ray get-auth-token --generate`` writes one to ``~/.ray/auth_token``; so does a first local
``ray.init()``), but a client connecting to an explicit address only sends a token with
``RAY_AUTH_MODE=token``. :func:`prepare` does what ``ray start`` does: when ``RAY_AUTH_MODE``
is unset and this machine has a token (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``, in Ray's order), it sets ``RAY_AUTH_MODE=token`` for this process and its
children. A cluster without authentication accepts such a client too. A set ``RAY_AUTH_MODE``
is left as it is.

Then it checks, before ``ray.init``: that something listens at the address (TCP, within
``REACH_TIMEOUT_S``), and that it is a Ray head that accepts this machine's credentials (one GCS
request, within ``GCS_TIMEOUT_S``). Each failure is a ValueError of one line: nothing listens,
not a Ray head, the cluster wants a token and this machine has none (where to put it), or the
cluster rejected this machine's token (where it was read from).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
from pathlib import Path
from typing import Any

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN = "RAY_AUTH_TOKEN"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
REACH_TIMEOUT_S = 3.0
GCS_TIMEOUT_S = 5.0


def default_token_file() -> Path:
    """Ray's default token file, ``~/.ray/auth_token`` (what ``ray start --head`` reads)."""
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where Ray reads this machine's token from, in Ray's order (``RAY_AUTH_TOKEN``, the file
    named by ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), or None without a token.
    ValueError when ``RAY_AUTH_TOKEN_PATH`` names a missing or empty file (Ray would fail)."""
    if os.environ.get(TOKEN, "").strip():
        return f"the {TOKEN} environment variable"
    path = os.environ.get(TOKEN_PATH)
    if path:
        if not _nonempty(Path(path)):
            raise ValueError(f"{TOKEN_PATH}={path} names no readable, non-empty token file; "
                             f"point it at a copy of the head's token file or unset it")
        return f"{path} ({TOKEN_PATH})"
    if _nonempty(default_token_file()):
        return str(default_token_file())
    return None


def _nonempty(path: Path) -> bool:
    try:
        return path.is_file() and path.read_text().strip() != ""
    except OSError:
        return False


def use_token_if_available() -> str | None:
    """Set ``RAY_AUTH_MODE=token`` for this process and its children when it is unset and a
    token is available (what ``ray start --head`` does); returns where the token is read from
    (None: no token, or ``RAY_AUTH_MODE`` already set to something other than token)."""
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        return None
    source = token_source()
    if source is not None and mode is None:
        raylet = _raylet()
        if not hasattr(raylet, "AuthenticationTokenLoader"):   # a Ray without token auth
            return None
        os.environ[AUTH_MODE] = "token"
        raylet.Config.initialize("")          # Ray caches its config: reread RAY_AUTH_MODE
        raylet.AuthenticationTokenLoader.instance().reset_cache()
    return source


def resolve(address: str) -> tuple[str, str, int]:
    """(``host:port``, host, port) of ``address`` as ray.init resolves it (``auto``: the
    cluster last started on this machine, or ``RAY_ADDRESS``); ValueError when unknown."""
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        hostport = canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError) as e:
        raise ValueError(f"cannot find Ray at {address}: {_first_line(e)}") from None
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address} is not HOST:PORT (or auto)")
    return hostport, host.strip("[]"), int(port)


def check_reachable(address: str, host: str, port: int,
                    timeout_s: float = REACH_TIMEOUT_S) -> None:
    """ValueError (one line) unless a TCP connection to host:port opens within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as e:
        why = (f"no answer within {timeout_s:g} s" if isinstance(e, TimeoutError)
               else (e.strerror or str(e)).lower())
        where = "" if address == f"{host}:{port}" else f" ({host}:{port})"
        raise ValueError(f"cannot reach Ray at {address}{where}: {why}; start the head there "
                         f"with `ray start --head --port {port}` or correct --address") from None


def check_head(address: str, hostport: str, source: str | None,
               timeout_s: float = GCS_TIMEOUT_S) -> None:
    """One request to the Ray head (GCS) at ``hostport`` with this process's credentials;
    ValueError (one line) naming the cause when it fails. ``source``: where the token comes
    from (:func:`use_token_if_available`)."""
    import ray.exceptions

    raylet = _raylet()
    if not hasattr(raylet, "InnerGcsClient") or not hasattr(ray.exceptions,
                                                             "AuthenticationError"):
        return                   # a Ray without token authentication: ray.init checks the head
    try:
        with _quiet_stderr():           # Ray's C++ client logs each failure: our line says it
            raylet.InnerGcsClient.standalone(hostport, None, int(timeout_s * 1000))
    except ray.exceptions.AuthenticationError:
        raise ValueError(auth_message(address, source)) from None
    except ray.exceptions.RayError as e:
        raise ValueError(f"cannot reach Ray at {address}: {hostport} does not answer as a Ray "
                         f"head ({_first_line(e)}); is the port the head's --port?") from None


def copy_hint() -> str:
    """What to do to give this machine the cluster's token."""
    return (f"copy the head's token file (~/.ray/auth_token on the head; `ray get-auth-token` "
            f"prints it) to {default_token_file()} here, or set {TOKEN} to its content")


def auth_message(address: str, source: str | None) -> str:
    """The one-line error for a cluster that refused this machine's credentials."""
    copy = copy_hint()
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        return (f"the Ray cluster at {address} requires token authentication but "
                f"{AUTH_MODE}={mode} here: set {AUTH_MODE}=token (or unset it) and make sure "
                f"this machine has the cluster's token ({copy})")
    if source is None:
        return (f"the Ray cluster at {address} requires token authentication and this machine "
                f"has no token: {copy}")
    return (f"the Ray cluster at {address} rejected the authentication token from {source}: "
            f"it is not the cluster's token; {copy}")


def prepare(address: str) -> str:
    """Make this process ready to connect to the cluster at ``address`` (token mode, see the
    module docstring) and check that it can, in seconds; returns the address as ``host:port``
    for ray.init. ValueError (one line) when it cannot."""
    source = use_token_if_available()
    if source is None and (os.environ.get(AUTH_MODE) or "").lower() == "token":
        raise ValueError(f"{AUTH_MODE}=token here but this machine has no token: "
                         f"{copy_hint()}")
    hostport, host, port = resolve(address)
    check_reachable(address, host, port)
    check_head(address, hostport, source)
    return hostport


@contextlib.contextmanager
def _quiet_stderr():
    """Discard what is written to file descriptor 2 (C++ logging included) inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _raylet() -> Any:
    """Ray's compiled core (private API; the names used here are checked for)."""
    return importlib.import_module("ray._raylet")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
