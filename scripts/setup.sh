#!/usr/bin/env bash
# One-time setup, safe to rerun: creates .venv/ with PyTorch from PyPI (the libtorch
# that tch links against) and links .venv/torch-lib to its lib/ folder, which the
# binaries' rpath points at (.cargo/config.toml), so nothing needs LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

# `make test`'s format and lint gates need rustfmt and clippy.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >&2
  else
    echo "setup: cargo fmt and cargo clippy are needed (rustup component add rustfmt clippy)" >&2
    exit 1
  fi
fi

stamp=.venv/.norm-setup
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -e .venv/torch-lib/libtorch_cpu.so ]; then
  exit 0
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "setup: $python not found; install Python 3.10+ first" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "setup: Python 3.10+ needed, found $("$python" --version)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python" --version)" >&2
  "$python" -m venv .venv
fi
echo "setup: installing $(grep -v '^#' requirements.txt | tr '\n' ' ')into .venv (about 5 GB with CUDA libraries; a few minutes)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

torch_lib="$(.venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
ln -sfn "${torch_lib#"$PWD/.venv/"}" .venv/torch-lib
[ -e .venv/torch-lib/libtorch_cpu.so ] || { echo "setup: $torch_lib has no libtorch_cpu.so" >&2; exit 1; }
echo "$want" > "$stamp"
echo "setup: done (torch $(.venv/bin/python -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())'))" >&2
