# Sourced by scripts/sync and scripts/test: the pipeline's virtual environment, the stack, DAGSTER_HOME.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# The stack (Nautobot's own venv, a schema migration and the seeds on a cold machine) and the pipeline's
# venv are independent: build them side by side.
scripts/stack up &
stack_pid=$!

stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "[setup] installing veritas_pipeline and its dependencies into .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
export PATH="$REPO/.venv/bin:$PATH"

if ! wait "$stack_pid"; then
    echo "[setup] the local stack did not start (see the [stack] lines above)" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1091
source "${VERITAS_STACK_DIR:-$REPO/.stack}/stack.env"
set +a

export DAGSTER_HOME="$REPO/.dagster"
mkdir -p "$DAGSTER_HOME"
ln -sf ../dagster.yaml "$DAGSTER_HOME/dagster.yaml"
