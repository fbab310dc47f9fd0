"""The one exception type for errors a user can fix, and its named kinds.

Every layer raises a ``UserError`` (or a subclass) for bad input, missing
configuration, an unreachable server or an empty library: the message is one
line written for the user, and the CLI and the chat page show it as it is.
Anything else is a bug: the CLI prints a short note and where the full trace
went (``--debug`` shows it), never a bare "error: …" that hides it.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can act on; ``str(exc)`` is one clear line naming what was wrong and where."""


class BackendError(UserError):
    """A model backend failed (unreachable, timed out, rejected the key, broke off a stream)."""
