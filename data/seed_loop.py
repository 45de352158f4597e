"""The seed document's two programs in real PyTorch, printed as norm-bench's JSON.

    python data/seed_loop.py --example weight-norm --seed 0 --steps 1000
    echo '[["seed-spectral", 3, 37], ...]' | python data/seed_loop.py --batch   # one JSON line per run

Mirrors `norm-bench seed-loop --json` (see norm-bench/src/seed_loop.rs): the same
programs, `torch.manual_seed(seed); random.seed(seed)` first, 1 intra-op thread, and
`weight` recomputed from the current parameters with `torch._weight_norm(v, g, 0)`.
"""
import argparse
import json
import os
import random
import sys

import torch
import torch.nn as nn
import torch.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_helpers import bits, pin_threads, print_json, quiet_warnings  # noqa: E402

quiet_warnings(FutureWarning)  # weight_norm is deprecated upstream


def snapshot(label, layer):
    weight = torch._weight_norm(layer.weight_v, layer.weight_g, 0)
    names = {"bias": layer.bias, "weight": weight, "weight_g": layer.weight_g, "weight_v": layer.weight_v}
    return {"label": label, "tensors": {k: bits(v) for k, v in sorted(names.items())}}


def run(example, seed, steps):
    pin_threads()
    torch.manual_seed(seed)
    random.seed(seed)
    linear_layer = nn.Linear(2, 3)
    if example == "weight-norm":
        linear_layer.weight.data = torch.tensor([[0, -2e-2], [0.3, 1.0], [1e-2, 0]], dtype=torch.float32)
        linear_layer.bias.data = torch.tensor([-0.3, 0, -2e-2], dtype=torch.float32)
        lr = 2e-3
    else:
        linear_layer.weight.data = torch.tensor([[0, -2e2], [0.3, 1.0], [1e2, 0]], dtype=torch.float32)
        linear_layer.bias.data = torch.tensor([-0.3, 0, -2e2], dtype=torch.float32)
        lr = 1e-4
    linear_layer = torch.nn.utils.weight_norm(linear_layer, name="weight")
    optimizer = optim.Adam(linear_layer.parameters(), lr=lr)
    snapshots = [snapshot("initial", linear_layer)]

    def step(x):
        output = linear_layer(x)
        loss = 1 - output.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    if example == "weight-norm":
        for _ in range(steps):
            step(torch.randn(10, 2) * random.random() * 10)
        snapshots.append(snapshot("after_loop1", linear_layer))
        for _ in range(steps):
            x = torch.randn(10, 2) * random.random() * 10
            step(x)
            step(x)
    else:
        for _ in range(steps):
            step(torch.randn(10, 2))
    snapshots.append(snapshot("final", linear_layer))
    return {"example": example, "seed": seed, "steps": steps, "snapshots": snapshots}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", choices=["weight-norm", "seed-spectral"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", action="store_true", help="read [[example, seed, steps], ...] from stdin")
    args = parser.parse_args()
    if args.batch:
        runs = json.load(sys.stdin)
    elif args.example is None:
        parser.error("--example is required without --batch")
    else:
        runs = [(args.example, args.seed, args.steps)]
    for example, seed, steps in runs:
        print_json(run(example, seed, steps))


if __name__ == "__main__":
    main()
