"""Masking secrets for display: the one place that decides what looks like a secret and how it is shown.

Everything that shows configuration or free text a secret may have reached goes
through here: ``assistant config`` (``mask``), the CLI's error lines and trace
files, the chat page's error messages and exports (``redact``). A secret is

* the value of a field whose name says so (``api_key``, ``apiKey``, ``password``,
  ``token``, ``secret``, ``auth``, ``credentials``, ...; ``max_tokens`` is a count,
  not a token), at any depth of a dict (``llm_kwargs = {"api_key": ...}``);
* the password of a URL (``http://user:pass@host`` → ``http://user:***@host``) and
  a query parameter with a secret's name (``?api_key=…``);
* in free text also an ``Authorization: Bearer …`` value, an OpenAI-style key
  (``sk-…``) and the value of any environment variable whose name says it is a
  secret (``OPENAI_API_KEY``, ``ASSISTANT_LLM_API_KEY``, ...), wherever it appears.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "****"
_SECRET_WORDS = {"key", "apikey", "secret", "password", "passwd", "passphrase", "token", "auth", "authorization",
                 "credential", "credentials", "cookie"}
_NOT_SECRET_ENV = {"SSH_AUTH_SOCK", "GPG_AGENT_INFO"}  # secret-sounding names holding paths
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# scheme://user:password@  (the password is what goes)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
_BEARER = re.compile(r"(\b(?:Bearer|Basic|Token)\s+)([A-Za-z0-9._~+/=-]{8,})", re.I)
_KEY_LIKE = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{12,}")
_SECRET_PARAM = re.compile(r"([?&]([A-Za-z0-9_.-]+)=)([^&#\s]+)")


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret: one of its words (snake, kebab or camel case) says so."""
    words = re.split(r"[_\-.\s]+", _CAMEL.sub("_", str(name)).lower())
    return any(w in _SECRET_WORDS for w in words) or "apikey" in str(name).lower().replace("_", "").replace("-", "")


def mask_secret(value: Any) -> str:
    """A secret as shown: empty stays empty; the last four characters of a long one, so two keys can be told apart."""
    raw = str(value if value is not None else "")
    if not raw:
        return ""
    return MASK + raw[-4:] if len(raw) > 16 else MASK


def mask_url(url: str) -> str:
    """A URL with its password and secret query parameters masked (anything else is returned unchanged)."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + "***" + m.group(3), str(url))
    return _SECRET_PARAM.sub(lambda m: m.group(1) + (MASK if is_secret_name(m.group(2)) else m.group(3)), text)


def mask(value: Any, name: str = "") -> Any:
    """``value`` (a setting, a dict of them, a list) for display: secrets by name masked at any depth, every URL's
    password masked. Non-secret values come back as they were."""
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr
        return mask_secret(value.get_secret_value())
    if name and is_secret_name(name) and value not in (None, "", {}, []) and not isinstance(value, bool):
        if isinstance(value, dict):  # e.g. auth = {user, password}: every part of it
            return {k: mask_secret(v) for k, v in value.items()}
        return mask_secret(value)
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v) for v in value)
    if isinstance(value, str):
        return mask_url(value)
    return value


def _env_secrets() -> list[str]:
    """Values of environment variables whose names say they are secrets (long enough to be worth finding; not paths)."""
    return [v for k, v in os.environ.items()
            if is_secret_name(k) and k not in _NOT_SECRET_ENV and len(v) >= 8 and not v.startswith(("/", "~"))]


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Free text (an error message, a trace, an export) with every secret masked: URL passwords, bearer tokens,
    sk- keys, the values of secret environment variables and the given ``secrets``."""
    text = str(text)
    for secret in sorted({*secrets, *_env_secrets()}, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_secret(secret))
    text = mask_url(text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _KEY_LIKE.sub(lambda m: m.group(1) + "-" + MASK, text)
