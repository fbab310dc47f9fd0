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


def write_trace(exc: BaseException, folder=None, note: str = ""):
    """Write ``exc``'s traceback to ``folder`` (default ``<ASSISTANT_HOME>/logs``; the temp folder when that
    cannot be written) and return the file's path: a bug is one line for the user and its trace on disk."""
    import os
    import sys
    import tempfile
    import traceback
    from datetime import datetime
    from pathlib import Path

    from assistant.core.secrets import redact

    # The command line and the error may carry a URL with a password or a key: masked (core/secrets.py).
    text = redact((note or " ".join(sys.argv)) + "\n\n" + "".join(traceback.format_exception(exc)))
    if folder is None:
        folder = Path(os.environ.get("ASSISTANT_HOME") or "~/.research-assistant").expanduser() / "logs"
    name = f"error-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}-{os.getpid()}.log"
    for where in (Path(folder), Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True)
            (where / name).write_text(text)
            return where / name
        except OSError:
            continue
    return Path("(could not be written)")
