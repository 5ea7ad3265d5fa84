#!/usr/bin/env bash
# The one prepared GPU run on a CUDA machine; README "One GPU run" says how to run it.
#   OUT=DIR bash bench/gpu_run.sh [--smoke] [--budget SECONDS] [--dev-data PATH] ...   (all: --help)
# A thin entry: makes the checkout importable, installs carried wheels (.whl/) when a dependency is
# missing, and runs bench/gpu_run.py under a hard time limit a little above its own budget.
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
if [ -z "${OUT:-}" ]; then
    echo "error: set OUT to the folder for the results (created as needed)" >&2
    exit 2
fi
if ! "$PY" -c "import imageio_ffmpeg, typer, rich, safetensors" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        site=${TMPDIR:-/tmp}/skyforecast-site
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
            && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "note: a dependency is missing and no .whl/ was carried; phases that need it will fail" >&2
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# the driver keeps to --budget (540 s) itself; this only catches a driver that does not
if command -v timeout >/dev/null; then
    exec timeout -k 5 "${GPU_RUN_HARD_LIMIT:-580}" "$PY" bench/gpu_run.py "$@"
fi
exec "$PY" bench/gpu_run.py "$@"
