"""One client for OCI registries (the distribution spec's HTTP API): pinning a build image to
its digest (:mod:`geonox.images`) and the remote dependency cache (:mod:`geonox.remote`)
both speak to registries through :class:`Registry`.

- **Where.** A registry on a loopback address (``localhost``, 127.0.0.0/8, ``[::1]``) is
  spoken to over plain HTTP, as docker does; any other over HTTPS unless the caller says
  otherwise (``oci+http://`` for the cache).
- **Who.** Credentials are found where the docker client finds them, in
  ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``): the registry's credential helper
  (``credHelpers``), else the default one (``credsStore``), each asked through the helper
  protocol (``docker-credential-<name> get``), else the ``auths`` entry ``docker login``
  wrote.  They answer the registry's challenge: basic auth, or the token flow (the
  ``Bearer`` realm is asked for a token for the repository and the actions wanted, with the
  credentials when there are any, anonymously otherwise).
- **Retries.** One policy for every request: a 401 is answered once with the credentials
  it asks for; a GET or HEAD answered 429, 502, 503 or 504 is tried again twice (0.5 s,
  then 1 s, or the ``Retry-After`` it sends, up to :data:`RETRY_AFTER_CAP`).  A refused
  connection is not retried: a registry that is down costs nothing but the message.
  :class:`RegistryError` says whether the registry could not be reached at all
  (``unreachable``: refused, unresolvable, timed out), so a caller can stop asking it.

Failures raise :class:`RegistryError` (one sentence naming the registry); each caller says
what it means for it (pinning stops, the cache builds here instead).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

#: The longest ``Retry-After`` (seconds) a retried request waits for.
RETRY_AFTER_CAP = 10.0
TIMEOUT = 60.0


class RegistryError(Exception):
    """A registry could not be used for a request; ``str()`` says why, naming it.
    ``status``: the HTTP status it answered (None when it did not answer at all:
    ``unreachable``, a refused or cut connection, a name that does not resolve, a timeout)."""

    def __init__(self, message: str, *, status: int | None = None, unreachable: bool = False):
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


class _Retry(Retry):
    def parse_retry_after(self, retry_after: str) -> float:
        return min(max(super().parse_retry_after(retry_after), 0.0), RETRY_AFTER_CAP)


def _retry() -> Retry:
    return _Retry(
        total=2,
        connect=0,
        read=0,
        status=2,
        backoff_factor=0.5,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def _cause(exc: BaseException) -> BaseException:
    """The innermost reason of a requests exception (requests wraps urllib3's
    MaxRetryError, which holds it: a refused connection, a read timeout, a cut)."""
    seen = exc
    for _ in range(6):
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            first = seen.args[0] if seen.args else None
            inner = first if isinstance(first, BaseException) else None
        if inner is None:
            break
        seen = inner
    return seen


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the registry cannot be reached at all (a refused connection, a
    name that does not resolve, a connect or read timeout), not that one exchange broke
    off."""
    return isinstance(exc, requests.Timeout) or isinstance(
        _cause(exc), (NewConnectionError, Urllib3Timeout)
    )


def split_host(registry: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) as (host, port)."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", registry)
    if m is None:
        raise RegistryError(f"{registry!r} is not a registry address (host[:port])")
    host = m.group(1) or m.group(3)
    port = m.group(2) or m.group(4)
    return host, int(port) if port else None


def is_loopback(registry: str) -> bool:
    """Whether ``registry`` (``host[:port]``) is this machine: localhost, 127.0.0.0/8, ::1."""
    try:
        host, _ = split_host(registry)
    except RegistryError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scheme_for(registry: str) -> str:
    return "http" if is_loopback(registry) else "https"


def docker_credentials(registry: str) -> tuple[str, str] | None:
    """(user, password) for ``registry`` as the docker client would find them, else None."""
    config_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        config = json.loads((Path(config_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    helper = (config.get("credHelpers") or {}).get(registry) or config.get("credsStore")
    if helper:
        found = _helper_credentials(str(helper), registry)
        if found:
            return found
    for name, entry in (config.get("auths") or {}).items():
        host = re.sub(r"^https?://", "", name).split("/")[0]
        if host == registry and isinstance(entry, dict) and entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                return None
            return (user, secret) if user and secret else None
    return None


def _helper_credentials(helper: str, registry: str) -> tuple[str, str] | None:
    """What ``docker-credential-<helper> get`` knows for ``registry`` (None when it knows
    nothing, is missing, or holds an identity token, which basic auth cannot use)."""
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=registry,
            text=True,
            capture_output=True,
            timeout=30,
        )
        answer = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    user, secret = answer.get("Username"), answer.get("Secret")
    if not user or not secret or user == "<token>":
        return None
    return str(user), str(secret)


class Registry:
    """A session with one registry: requests to ``/v2/<repository>/…``, authenticated as
    the registry asks, retried by the one policy (see the module docstring)."""

    def __init__(
        self,
        registry: str,
        *,
        scheme: str | None = None,
        timeout: float | tuple[float, float] = TIMEOUT,
    ):
        self.registry = registry
        self.scheme = scheme or scheme_for(registry)
        self.timeout = timeout
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=_retry())
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._auth: dict[str, str] = {}  # scope -> Authorization header value

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def url(self, repository: str, path: str) -> str:
        return f"{self.scheme}://{self.registry}/v2/{repository}/{path}"

    def request(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        actions: str = "pull",
        ok: tuple[int, ...] = (200,),
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """``method`` on ``/v2/<repository>/<path>`` (or ``url``, an upload location), with
        the rights ``actions`` ("pull" or "pull,push"); a status not in ``ok`` raises."""
        target = url or self.url(repository, path)
        scope = f"repository:{repository}:{actions}"
        sent = dict(headers or {})

        def send() -> requests.Response:
            if scope in self._auth:
                sent["Authorization"] = self._auth[scope]
            try:
                return self._session.request(
                    method, target, headers=sent, timeout=self.timeout, **kwargs
                )
            except requests.RequestException as exc:
                raise RegistryError(
                    f"{self.registry} did not answer ({type(_cause(exc)).__name__})",
                    unreachable=_unreachable(exc),
                ) from None

        resp = send()
        if resp.status_code == 401:  # once more, with the credentials it asks for
            self._authenticate(resp.headers.get("WWW-Authenticate", ""), scope, actions)
            data = kwargs.get("data")
            if data is not None and hasattr(data, "seek"):
                data.seek(0)
            resp = send()
            if resp.status_code == 401:
                raise RegistryError(
                    f"{self.registry} refused the credentials for {actions} "
                    "(docker login to it, or check the token's rights)",
                    status=401,
                )
        if resp.status_code not in ok:
            shown = target.split("/v2/", 1)[-1].split("?")[0]
            raise RegistryError(
                f"{self.registry} answered HTTP {resp.status_code} to {method} {shown}",
                status=resp.status_code,
            )
        return resp

    def _authenticate(self, challenge: str, scope: str, actions: str) -> None:
        creds = docker_credentials(self.registry)
        if challenge.lower().startswith("basic"):
            if not creds:
                raise RegistryError(f"{self.registry} wants a login (docker login {self.registry})")
            basic = base64.b64encode(":".join(creds).encode()).decode()
            self._auth[scope] = f"Basic {basic}"
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(
                f"{self.registry} asked for authentication without a token realm ({challenge!r})"
            )
        params["scope"] = scope
        try:
            resp = self._session.get(realm, params=params, auth=creds, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(
                f"{realm} did not answer ({type(exc).__name__})", unreachable=True
            ) from None
        token: str | None = None
        if resp.ok:
            try:
                body = resp.json()
                token = body.get("token") or body.get("access_token")
            except ValueError:
                token = None
        if not token:
            who = "" if creds else "anonymous "
            raise RegistryError(
                f"{realm} gave no {who}token for {scope} (HTTP {resp.status_code})"
                + ("" if creds else f"; is it private? docker login {self.registry}")
            )
        self._auth[scope] = f"Bearer {token}"
