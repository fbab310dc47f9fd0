"""Answer backends behind one small interface, chosen by name (see ``base.make_backend``)."""

from assistant.backends.base import AnswerTask, Backend, BackendError, Source, make_backend

__all__ = ["AnswerTask", "Backend", "BackendError", "Source", "make_backend"]
