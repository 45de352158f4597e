#!/usr/bin/env bash
# scripts/gpu-check.sh: norm on an NVIDIA GPU, with binaries prebuilt elsewhere.
#
#   make gpu-bundle                 # here (Rust toolchain, .venv): builds target/gpu-bundle/
#   scripts/gpu-check.sh --bundle   # the same
#   scripts/gpu-check.sh OUTDIR     # on the GPU machine, in a copy of the repository that
#                                   # has target/gpu-bundle/ (no Rust, no internet needed)
#
# On the GPU machine it uses that machine's own `python3` (torch 2.11.0+cu130; override with
# PYTHON=...) and its torch's lib/ for libtorch (LD_LIBRARY_PATH), and runs, each under
# `timeout`, in under 10 minutes in all:
#   1. the CUDA tests: target/gpu-bundle/cuda (norm-tch/tests/cuda.rs),
#      target/gpu-bundle/conformance (norm-tch/tests/conformance.rs) and
#      target/gpu-bundle/checkpoint (norm-tch/tests/checkpoint.rs: loads into and saves from a
#      VarStore on CUDA, besides its CPU tests), with NORM_REQUIRE_CUDA=1 (a missing GPU is a
#      failure), NORM_PYTHON=python3 (live PyTorch) and NORM_REPO (this copy of the repository);
#   2. the parity spec on CUDA against live PyTorch CUDA:
#      norm-bench parity --spec data/parity_cuda_spec.json --live --python python3;
#   3. a short CUDA report sweep (norm-bench report --device cuda, PyTorch CUDA beside it): the
#      single ops at 256, 1024 and 4096, and the whole-model rows (training step with the losses
#      checked bit for bit against PyTorch CUDA's, eval cached and folded), two paired rounds per
#      case so that each ratio's interval sees the rounds disagree.
# Everything goes into OUTDIR: env.txt, one log per step, parity.txt, report/sweep/ (CSV,
# run.json) and summary.md (steps, parity table per optimizer path, CUDA timing ratios).
# Exit status: 0 if every step passed, 1 if one failed (OUTDIR still has what ran), 2 for
# bad usage or no GPU here (with a message saying so).
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=$ROOT/target/gpu-bundle
# The prebuilt test binaries: "<crate> <test target>" each.
TESTS=("norm-tch cuda" "norm-tch conformance" "norm-tch checkpoint")

build_bundle() {
    cd "$ROOT" || exit 2
    export PATH=$ROOT/.venv/bin:$PATH LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH=$ROOT/.venv/torch-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    cargo build --release -p norm-bench || exit 1
    rm -rf "$BUNDLE" && mkdir -p "$BUNDLE" || exit 1
    cp target/release/norm-bench "$BUNDLE/" || exit 1
    for t in "${TESTS[@]}"; do
        set -- $t
        exe=$(cargo test --release -p "$1" --test "$2" --no-run --message-format=json |
            python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$2" | tail -1)
        [ -n "$exe" ] || { echo "gpu-bundle: no test binary for $1 --test $2" >&2; exit 1; }
        cp "$exe" "$BUNDLE/$2" || exit 1
    done
    readelf -d "$BUNDLE/norm-bench" | grep -q 'libtorch_cuda.so' ||
        { echo "gpu-bundle: norm-bench does not link libtorch_cuda.so (see norm-tch/build.rs)" >&2; exit 1; }
    du -b "$BUNDLE"/* | awk '{ printf "%8.1f MiB  %s\n", $1 / 1048576, $2; s += $1 } END { printf "%8.1f MiB  total (the carry limit is 64 MiB)\n", s / 1048576; if (s > 64 * 1048576) exit 1 }' ||
        { echo "gpu-bundle: over 64 MiB" >&2; exit 1; }
    echo "carry: target/gpu-bundle"
    exit 0
}

[ "${1:-}" = "--bundle" ] && build_bundle
[ $# -eq 1 ] || { echo "usage: scripts/gpu-check.sh OUTDIR   (or --bundle to build target/gpu-bundle here)" >&2; exit 2; }
OUT=$1
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-python3}
START=$(date +%s)
FAILED=()
STEPS=()

# No GPU: say so and stop before anything else.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$OUT/nvidia-smi.txt" 2>&1 || ! grep -q '^GPU ' "$OUT/nvidia-smi.txt"; then
    echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi missing or lists none); nothing run. Run it where there is one." | tee "$OUT/summary.md" >&2
    exit 2
fi
[ -x "$BUNDLE/norm-bench" ] || { echo "gpu-check: no $BUNDLE/norm-bench; build it with 'make gpu-bundle' and carry target/gpu-bundle" | tee "$OUT/summary.md" >&2; exit 2; }

TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>"$OUT/python.err") ||
    { echo "gpu-check: $PYTHON cannot import torch: $(cat "$OUT/python.err")" | tee "$OUT/summary.md" >&2; exit 2; }
export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NORM_REPO=$ROOT NORM_PYTHON=$PYTHON NORM_REQUIRE_CUDA=1 NORM_REQUIRE_PYTORCH=1
{
    echo "date: $(date -u +%FT%TZ)"
    cat "$OUT/nvidia-smi.txt"
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ldd "$BUNDLE/norm-bench" | grep -E 'torch|c10|not found'
} >"$OUT/env.txt" 2>&1

# step NAME SECONDS CMD...: runs CMD under timeout, output into OUT/NAME.log, records the result.
step() {
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    echo "gpu-check: $name (at most ${limit}s)" >&2
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    local how=passed
    [ $rc -eq 0 ] || { how="FAILED (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))"; FAILED+=("$name"); }
    STEPS+=("| $name | $how | $(($(date +%s) - t0)) s |")
    echo "gpu-check: $name $how" >&2
}

step test-cuda 150 "$BUNDLE/cuda" --test-threads 1
step test-conformance 60 "$BUNDLE/conformance" --test-threads 1
step test-checkpoint 120 "$BUNDLE/checkpoint"
if [ -f data/parity_cuda_spec.json ]; then
    step parity 150 "$BUNDLE/norm-bench" parity --spec data/parity_cuda_spec.json --live --python "$PYTHON"
else
    echo "data/parity_cuda_spec.json is missing" >"$OUT/parity.log"
    FAILED+=(parity)
    STEPS+=("| parity | FAILED (data/parity_cuda_spec.json missing) | 0 s |")
fi
step report 180 "$BUNDLE/norm-bench" report --device cuda --out "$OUT/report" --run sweep \
    --ops copy,weight_norm_forward,weight_norm_forward_backward,spectral_norm_forward_train,spectral_norm_forward_backward,spectral_norm_train_step,hifigan_train_step,hifigan_eval_cached,hifigan_eval_folded,sn_discriminator_train_step,sn_discriminator_eval_cached,sn_discriminator_eval_folded \
    --sizes 256,1024,4096 --rect-shapes '' --dtypes bf16 --budget-ms 300 --rounds 2 \
    --no-convergence --no-loss --no-plots --python "$PYTHON"

{
    echo "# gpu-check $(date -u +%FT%TZ)"
    echo
    echo '```'
    cat "$OUT/env.txt"
    echo '```'
    echo
    echo "| step | result | time |"
    echo "| --- | --- | --- |"
    printf '%s\n' "${STEPS[@]}"
    echo
    echo "Total: $(($(date +%s) - START)) s. Tests: $(grep -h '^test result' "$OUT"/test-*.log 2>/dev/null | tr '\n' ' ')"
    echo
    "$PYTHON" - "$OUT" "$ROOT/data/parity_cuda_spec.json" <<'PY'
import collections, csv, json, os, sys
out, spec_path = sys.argv[1], sys.argv[2]
print("## Parity on CUDA, per optimizer path\n")
try:
    spec = json.load(open(spec_path))["cases"]
    paths = {}
    for c in spec:
        o = c.get("optimizer") or {}
        kind = o.get("kind", "adam") if o else "none"
        key = f"{kind} foreach={o.get('foreach')} fused={o.get('fused')}" if o else "no optimizer"
        paths[c["name"]] = f"{key} on {c.get('device', 'cpu')}"
    verdict = collections.defaultdict(lambda: True)
    for line in open(os.path.join(out, "parity.log")):
        parts = line.split()
        if len(parts) >= 4 and parts[0] in paths and parts[1].isdigit():
            eq = line[line.index(parts[2]):].split()
            verdict[parts[0]] &= "yes" in eq
    table = collections.defaultdict(lambda: [0, 0, 0])
    for name, path in paths.items():
        row = table[path]
        row[0] += 1
        if name not in verdict:
            row[2] += 1
        elif verdict[name]:
            row[1] += 1
    print("| optimizer path | cases | bit-equal | not run / no rows |\n| --- | --- | --- | --- |")
    for path, (n, ok, missing) in sorted(table.items()):
        print(f"| {path} | {n} | {ok} | {missing} |")
    tail = [l.rstrip() for l in open(os.path.join(out, "parity.log")) if "comparisons in" in l]
    print("\n" + (tail[-1] if tail else "parity printed no summary line (see parity.log)"))
except Exception as e:  # noqa: BLE001
    print(f"(no parity table: {e!r}; see parity.log)")
print("\n## CUDA timings (median us; ratio = Rust / PyTorch)\n")
try:
    rows = list(csv.DictReader(open(os.path.join(out, "report", "sweep", "timing.csv"))))
    print("| op | shape | dtype | device | Rust | PyTorch | ratio | interval | settled | note |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['op']} | {r['shape']} | {r['dtype']} | {r['device']} | {r['rust_median_us'] or r['rust_status']} | "
              f"{r['pytorch_median_us'] or r['pytorch_status']} | {r['ratio_median_rust_over_pytorch'] or '-'} | "
              f"[{r['ratio_low']}, {r['ratio_high']}] | {r['ratio_settled']} | {r['note']} |")
except Exception as e:  # noqa: BLE001
    print(f"(no timing table: {e!r}; see report.log)")
PY
} >"$OUT/summary.md" 2>&1

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "gpu-check: FAILED: ${FAILED[*]} (see $OUT/summary.md and the logs)" >&2
    exit 1
fi
echo "gpu-check: all passed ($OUT/summary.md)" >&2
