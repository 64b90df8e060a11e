"""Error types.

A :class:`UserError` is something the person running geonox can fix (bad config, a
checksum mismatch, a missing tool, a too-new symbol).  It is printed as one short
paragraph without a traceback.  Any other exception is a bug in geonox and keeps its
traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; ``str(err)`` is the whole message."""


class ConfigError(UserError):
    """``[tool.geonox]`` or a ``register()`` keyword holds a bad value."""


class SourceError(UserError):
    """A source could not be fetched, verified or extracted."""


class ChecksumError(SourceError):
    """Downloaded bytes do not hash to the pinned sha256."""


class BuildError(UserError):
    """A build command failed; the message names the command and shows its log tail."""


class VerifyError(UserError):
    """A wheel broke one of the verify rules."""
