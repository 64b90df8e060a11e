"""Every ``GEONOX_*`` environment variable (and ``SOURCE_DATE_EPOCH``), read in this one
place from one table, :data:`VARIABLES`: its name, the :class:`Environment` field it
fills, how its text is read, the ``[tool.geonox]`` option it overrides (if any) and one
line of documentation (``docs/options.md`` is generated from it).

:func:`read` returns an :class:`Environment`; :func:`geonox.project.load_config` keeps it in
the ``Config`` it returns (the overriding variables applied by :mod:`geonox.config`), and
code that runs without a project (``python -m geonox cache``, :func:`geonox.sources.fetch`
called on its own) calls :func:`read` itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from geonox.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("geonox")).resolve()


@dataclass(frozen=True)
class Environment:
    """The variables' values; ``None`` (or empty) where a variable is not set."""

    mirrors: tuple[str, ...] = ()
    offline: bool | None = None  # None: not set, the config decides
    ccache: bool | None = None
    uv: bool = True  # False: pip for venvs and build isolation
    cache_dir: Path = field(default_factory=default_cache_dir)
    timeout: float | None = None
    engines: Mapping[str, str] = field(default_factory=dict)  # "docker" -> client path
    source_date_epoch: int | None = None
    cache_remote: str | None = None
    cache_push: bool | None = None


def _bad(var: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"{var}={value!r} is not valid: {allowed}.", key=var)


def _flag(var: str, text: str) -> bool | None:
    """A yes/no variable: True, False, or None when unset."""
    word = text.strip().lower()
    if word and word not in _TRUE | _FALSE:
        raise _bad(var, text, "expected 1/true/yes/on or 0/false/no/off")
    return (word in _TRUE) if word else None


def _uv(var: str, text: str) -> bool:
    return _flag(var, text) is not False


def _words(var: str, text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _text(var: str, text: str) -> str | None:
    return text.strip() or None


def _cache_dir(var: str, text: str) -> Path:
    return Path(text.strip()).expanduser().resolve() if text.strip() else default_cache_dir()


def _timeout(var: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise _bad(
            var,
            text.strip(),
            "expected a number of seconds such as 60, or unset it (default: connect "
            "10 s, read 60 s)",
        )
    return seconds


def _epoch(var: str, text: str) -> int | None:
    text = text.strip()
    if text and not text.isdigit():
        raise _bad(
            var,
            text,
            "expected whole seconds since 1970 (e.g. $(git log -1 --format=%ct)), or unset it",
        )
    return int(text) if text else None


@dataclass(frozen=True)
class Variable:
    name: str
    field: str  # of Environment
    read: Callable[[str, str], Any]  # (name, text; "" when unset) -> value
    doc: str
    option: str | None = None  # the [tool.geonox] option it overrides


#: Every variable geonox reads; a variable with ``option`` overrides that [tool.geonox] key
#: (``GEONOX_MIRROR``'s bases are tried *before* the configured ``mirrors``).
VARIABLES: tuple[Variable, ...] = (
    Variable("GEONOX_MIRROR", "mirrors", _words,
             "mirror base URLs or directories, whitespace separated", option="mirrors"),
    Variable("GEONOX_OFFLINE", "offline", _flag, "`1/true/yes/on` or `0/false/no/off`",
             option="offline"),
    Variable("GEONOX_CCACHE", "ccache", _flag, "`1/…` or `0/…`", option="ccache"),
    Variable("SOURCE_DATE_EPOCH", "source_date_epoch", _epoch,
             "the reproducible-builds.org variable", option="source-date-epoch"),
    Variable("GEONOX_CACHE_REMOTE", "cache_remote", _text, "`oci://host/repository`",
             option="cache-remote"),
    Variable("GEONOX_CACHE_PUSH", "cache_push", _flag, "`1/…` or `0/…`", option="cache-push"),
    Variable("GEONOX_CACHE_DIR", "cache_dir", _cache_dir,
             "the cache root (default: the platform's user cache directory, "
             "`~/.cache/geonox` on Linux)"),
    Variable("GEONOX_TIMEOUT", "timeout", _timeout,
             "download and registry read timeout in seconds (default: connect 10 s, read 60 s; "
             "the remote cache: 5 s and 15 s)"),
    Variable("GEONOX_UV", "uv", _uv, "`0/false/no/off`: pip instead of uv"),
    Variable("GEONOX_DOCKER", "docker", _text,
             "the docker client to run (default: `docker` on `PATH`)"),
    Variable("GEONOX_PODMAN", "podman", _text,
             "the podman client to run (default: `podman` on `PATH`)"),
)  # fmt: skip


def read(environ: Mapping[str, str] | None = None) -> Environment:
    """The settings in ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    values = {v.field: v.read(v.name, env.get(v.name, "")) for v in VARIABLES}
    engines = {kind: values.pop(kind) for kind in ("docker", "podman")}
    return Environment(**values, engines={k: v for k, v in engines.items() if v})
