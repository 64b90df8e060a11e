"""Every ``GEONOX_*`` environment variable, read in this one place.

:func:`read` returns an :class:`Environment`; :func:`geonox.config.load_config` keeps it
in the ``Config`` it returns, and code that runs without a project (``python -m geonox
cache``, :func:`geonox.sources.fetch` called on its own) calls :func:`read` itself.

=====================  ==================================================================
``GEONOX_MIRROR``      mirror base URLs or directories, whitespace separated; tried before
                       the ``mirrors`` of ``[tool.geonox]``
``GEONOX_OFFLINE``     ``1/true/yes/on`` or ``0/false/no/off``: overrides ``offline``
``GEONOX_CCACHE``      ``1/true/yes/on`` or ``0/false/no/off``: overrides ``ccache``
``GEONOX_UV``          ``0/false/no/off``: pip instead of uv
``GEONOX_CACHE_DIR``   the cache root (default: the platform's user cache dir)
``GEONOX_TIMEOUT``     download read timeout in seconds
``GEONOX_DOCKER``      the docker client to run (default: ``docker`` on PATH)
``GEONOX_PODMAN``      the podman client to run (default: ``podman`` on PATH)
``GEONOX_CACHE_REMOTE`` an OCI repository of dependency artifacts (``oci://host/repo``):
                      overrides ``cache-remote``
``GEONOX_CACHE_PUSH``  ``1/true/yes/on`` or ``0/…``: overrides ``cache-push``
``SOURCE_DATE_EPOCH``  (the reproducible-builds.org variable) overrides ``source-date-epoch``
=====================  ==================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from geonox.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
VARIABLES = (
    "GEONOX_MIRROR",
    "GEONOX_OFFLINE",
    "GEONOX_CACHE_DIR",
    "GEONOX_TIMEOUT",
    "GEONOX_DOCKER",
    "GEONOX_PODMAN",
    "GEONOX_CCACHE",
    "GEONOX_UV",
    "GEONOX_CACHE_REMOTE",
    "GEONOX_CACHE_PUSH",
)


@dataclass(frozen=True)
class Environment:
    mirrors: tuple[str, ...] = ()
    offline: bool | None = None  # None: not set, the config decides
    ccache: bool | None = None  # None: not set, the config decides
    uv: bool = True  # False: pip for venvs and build isolation
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    timeout: float | None = None
    engines: Mapping[str, str] = field(default_factory=dict)  # "docker" -> client path
    source_date_epoch: int | None = None  # SOURCE_DATE_EPOCH, when set
    cache_remote: str | None = None  # None: not set, the config decides
    cache_push: bool | None = None


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("geonox")).resolve()


def _bad(var: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"{var}={value!r} is not valid: {allowed}.", key=var)


def _flag(env: Mapping[str, str], var: str) -> bool | None:
    """A yes/no variable: True, False, or None when unset."""
    text = env.get(var, "").strip().lower()
    if text and text not in _TRUE | _FALSE:
        raise _bad(var, env[var], "expected 1/true/yes/on or 0/false/no/off")
    return (text in _TRUE) if text else None


def read(environ: Mapping[str, str] | None = None) -> Environment:
    """The ``GEONOX_*`` settings of ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    timeout = None
    timeout_text = env.get("GEONOX_TIMEOUT", "").strip()
    if timeout_text:
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise _bad(
                "GEONOX_TIMEOUT",
                timeout_text,
                "expected a number of seconds such as 60, or unset it (default: connect "
                "10 s, read 60 s)",
            )
    cache = env.get("GEONOX_CACHE_DIR", "").strip()
    epoch_text = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch_text and not epoch_text.isdigit():
        raise _bad(
            "SOURCE_DATE_EPOCH",
            epoch_text,
            "expected whole seconds since 1970 (e.g. $(git log -1 --format=%ct)), or unset it",
        )
    return Environment(
        mirrors=tuple(env.get("GEONOX_MIRROR", "").split()),
        offline=_flag(env, "GEONOX_OFFLINE"),
        ccache=_flag(env, "GEONOX_CCACHE"),
        uv=_flag(env, "GEONOX_UV") is not False,
        cache_dir=Path(cache).expanduser().resolve() if cache else default_cache_dir(),
        timeout=timeout,
        engines={
            kind: env[f"GEONOX_{kind.upper()}"]
            for kind in ("docker", "podman")
            if env.get(f"GEONOX_{kind.upper()}")
        },
        source_date_epoch=int(epoch_text) if epoch_text else None,
        cache_remote=env.get("GEONOX_CACHE_REMOTE", "").strip() or None,
        cache_push=_flag(env, "GEONOX_CACHE_PUSH"),
    )
