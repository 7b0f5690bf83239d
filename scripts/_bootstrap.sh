# Sourced by scripts/sync and scripts/test: the pipeline's virtual environment, the stack, DAGSTER_HOME.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

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

scripts/stack up
set -a
# shellcheck disable=SC1091
source "${VERITAS_STACK_DIR:-$REPO/.stack}/stack.env"
set +a

export DAGSTER_HOME="$REPO/.dagster"
mkdir -p "$DAGSTER_HOME"
ln -sf ../dagster.yaml "$DAGSTER_HOME/dagster.yaml"
