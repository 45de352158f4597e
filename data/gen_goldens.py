"""Generates norm's golden data with real PyTorch, or checks the committed data for drift.

    .venv/bin/python data/gen_goldens.py            # rewrite data/golden/
    .venv/bin/python data/gen_goldens.py --check    # regenerate in memory, compare, exit 1 on drift

Golden data is never edited by hand: change this script, rerun it, and say why in the
commit. Bits depend on the machine (ATen's CPU capability, thread count), so the manifest
records where the data was made; `--check` on a machine whose capability or torch version
differs prints SKIP and exits 0 rather than reporting a false drift.

Contents of data/golden/:
- manifest.json: torch version, CPU capability, threads, and the lists below.
- seed_loop/<example>_seed<S>_steps<K>.json: `norm-bench seed-loop --json` output as
  made by data/seed_loop.py (the seed document's programs).
- linear_init.json: `nn.Linear(in, out, bias)` built right after `torch.manual_seed(seed)`
  (its kaiming-uniform weight and uniform bias draws), then one `torch.randn(4)` to pin
  the generator state the construction leaves behind.
- parity_output.json: data/parity.py's output for the shipped spec data/parity_spec.json
  (every layer x norm x API x dim form, train and eval, with and without Adam, and
  PyTorch's error cases), which `norm-bench parity` must reproduce bit for bit.
- weight_norm.json: `torch._weight_norm(v, g, dim)` forward and the gradients of v and g
  for several shapes and every dim form (0, 1, last, -1, None, another negative), plus
  the registration value `norm_except_dim(v, 2, dim)`.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402  (the PyTorch side of norm-bench parity)
import seed_loop  # noqa: E402  (the same programs norm-bench replays)
from norm_helpers import THREADS, bits, dumps as compact_dumps, pin_threads, quiet_warnings  # noqa: E402

quiet_warnings(FutureWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
SEED_LOOP_EXAMPLES = ["weight-norm", "seed-spectral"]
SEED_LOOP_SEEDS = [0, 1, 1234567]
SEED_LOOP_STEPS = [1, 10, 1000]
WEIGHT_NORM_SHAPES = [[5], [3, 4], [4, 3, 2], [2, 3, 2, 2]]


def weight_norm_dims(rank):
    """Every dim form: None, -1, 0, 1, last, and another negative (-2), where valid."""
    forms = [None, -1, 0]
    if rank > 1:
        forms += [1, rank - 1, -2]
    out = []
    for d in forms:
        if d not in out:
            out.append(d)
    return out


def weight_norm_cases():
    torch.manual_seed(20240601)
    cases = []
    for shape in WEIGHT_NORM_SHAPES:
        for dim in weight_norm_dims(len(shape)):
            stored = -1 if dim is None else dim
            v = torch.randn(shape)
            g_init = torch.norm_except_dim(v, 2, stored)
            # A magnitude that differs from ||v||, so the forward is not the identity.
            g = (g_init * (torch.rand(g_init.shape) + 0.5)).detach()
            grad_out = torch.randn(shape)
            v_leaf = v.clone().requires_grad_(True)
            g_leaf = g.clone().requires_grad_(True)
            w = torch._weight_norm(v_leaf, g_leaf, stored)
            w.backward(grad_out)
            cases.append({
                "shape": shape,
                "dim": dim,
                "tensors": {
                    "v": bits(v), "g": bits(g), "grad_out": bits(grad_out),
                    "g_init": bits(g_init), "weight": bits(w),
                    "grad_v": bits(v_leaf.grad), "grad_g": bits(g_leaf.grad),
                },
            })
    return cases


def linear_init_cases():
    cases = []
    for seed in [0, 42]:
        for in_features, out_features, bias in [(2, 3, True), (5, 4, True), (7, 1, False), (64, 32, True)]:
            torch.manual_seed(seed)
            layer = torch.nn.Linear(in_features, out_features, bias=bias)
            tensors = {"weight": bits(layer.weight), "next_randn": bits(torch.randn(4))}
            if bias:
                tensors["bias"] = bits(layer.bias)
            cases.append({"seed": seed, "in_features": in_features, "out_features": out_features, "bias": bias, "tensors": tensors})
    return cases


def generate():
    """All golden files as {relative path: JSON-serializable object}."""
    pin_threads(THREADS)
    files = {}
    for example in SEED_LOOP_EXAMPLES:
        for seed in SEED_LOOP_SEEDS:
            for steps in SEED_LOOP_STEPS:
                files[f"seed_loop/{example}_seed{seed}_steps{steps}.json"] = seed_loop.run(example, seed, steps)
    files["weight_norm.json"] = {"cases": weight_norm_cases()}
    files["linear_init.json"] = {"cases": linear_init_cases()}
    files["parity_output.json"] = parity.run_spec(parity.load_spec(os.path.join(HERE, "parity_spec.json")))
    files["manifest.json"] = {
        "generator": "data/gen_goldens.py",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": THREADS,
        "files": sorted(files),
    }
    return files


def dumps(obj):
    return compact_dumps(obj, sort_keys=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed data instead of writing")
    args = parser.parse_args()
    if args.check:
        with open(os.path.join(GOLDEN, "manifest.json")) as f:
            manifest = json.load(f)
        here = (torch.__version__, torch.backends.cpu.get_cpu_capability())
        made = (manifest["torch"], manifest["cpu_capability"])
        if here != made:
            print(f"SKIP golden drift check: data made with torch {made[0]} on {made[1]}, this machine has torch {here[0]} on {here[1]}")
            return 0
        drifted = []
        for rel, obj in generate().items():
            path = os.path.join(GOLDEN, rel)
            committed = open(path).read() if os.path.exists(path) else None
            if committed != dumps(obj):
                drifted.append(rel)
        if drifted:
            print("golden data drifted from what PyTorch computes now:", *drifted, sep="\n  ")
            return 1
        print(f"golden data matches live PyTorch ({len(manifest['files']) + 1} files, torch {here[0]}, {here[1]})")
        return 0
    for rel, obj in generate().items():
        path = os.path.join(GOLDEN, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(dumps(obj))
        os.replace(path + ".tmp", path)
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
