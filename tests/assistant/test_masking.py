"""assistant.core.secrets: what counts as a secret, and how it is shown (config, errors, traces, exports)."""

from __future__ import annotations

from assistant.core.secrets import is_secret_name, mask, mask_url, redact


def test_masking__secret_names_by_word_not_by_substring():
    for name in ("api_key", "llm_api_key", "apiKey", "OPENAI_API_KEY", "password", "hf_token", "access-token",
                 "ui_auth", "Authorization", "client_secret", "credentials"):
        assert is_secret_name(name), name
    for name in ("llm_max_tokens", "chunk_tokens", "model", "author", "authors", "keywords", "monkey", "home"):
        assert not is_secret_name(name), name


def test_masking__nested_settings_keep_what_is_not_secret():
    shown = mask({"api_key": "sk-abcdefghijklmnop1234", "model": "llama3.1", "max_tokens": 512, "timeout": 30,
                  "nested": {"Token": "t0k3n-value-here-9999", "base_url": "http://u:p4ss@h:1/v1"},
                  "auth": {"user": "me", "password": "pw"}})
    assert shown == {"api_key": "****1234", "model": "llama3.1", "max_tokens": 512, "timeout": 30,
                     "nested": {"Token": "****9999", "base_url": "http://u:***@h:1/v1"},
                     "auth": {"user": "****", "password": "****"}}
    assert mask("", "api_key") == "" and mask(None, "token") is None  # unset stays visibly unset


def test_masking__url_password_and_secret_query_parameters():
    assert mask_url("http://user:pass@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("https://host/v1?api_key=abc&model=m") == "https://host/v1?api_key=****&model=m"
    assert mask_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert mask_url("not a url: x") == "not a url: x"


def test_masking__free_text(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-value-without-prefix")
    monkeypatch.setenv("PWD", "/work/somewhere")  # a path, not a secret, though the name sounds like one
    text = ("cannot reach http://lab:s3cret@10.0.0.2:8000 with Authorization: Bearer abcdefgh12345678; "
            "key sk-proj-0123456789abcdefXYZ rejected; plain-value-without-prefix echoed; cwd /work/somewhere")
    out = redact(text)
    for secret in ("s3cret", "abcdefgh12345678", "sk-proj-0123456789abcdef", "plain-value-without-prefix"):
        assert secret not in out, out
    assert "http://lab:***@10.0.0.2:8000" in out and "/work/somewhere" in out
