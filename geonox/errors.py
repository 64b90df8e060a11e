"""Error types.

A :class:`UserError` is something the person running geonox can fix (bad config, a
checksum mismatch, a missing tool, a too-new symbol).  It is printed as one short
paragraph without a traceback.  Any other exception is a bug in geonox and keeps its
traceback.  :class:`Interrupted` is a stop request (SIGTERM, SIGINT) turned into an
exception, so every ``with`` on the way out stops what it started.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; ``str(err)`` is the whole message."""


class ConfigError(UserError):
    """``[tool.geonox]``, a ``register()`` keyword or a ``GEONOX_*`` variable holds a bad
    value.  ``key`` is the top-level key at fault (``None`` when the file itself is)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SourceError(UserError):
    """A source could not be fetched, verified or extracted."""


class ChecksumError(SourceError):
    """Downloaded bytes do not hash to the pinned sha256."""


class BuildError(UserError):
    """A build command failed; the message names the command and shows its log tail."""


class VerifyError(UserError):
    """A wheel broke one of the verify rules."""


class Interrupted(KeyboardInterrupt):
    """geonox was told to stop (SIGTERM or SIGINT).  A KeyboardInterrupt, so nox reports
    the session as interrupted and exits non-zero, and ``except Exception`` never eats it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
