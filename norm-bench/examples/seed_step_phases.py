"""PyTorch eager's side of examples/seed_step_phases.rs: the seed document's weight-norm
training step (data/seed_loop.py, loop 1) timed per phase with one intra-op thread.

python norm-bench/examples/seed_step_phases.py [ROUNDS STEPS]: per phase the lowest over
ROUNDS (default 7) of the mean over STEPS (default 3000) steps, in microseconds.
"""
import random
import sys
import time
import warnings

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
torch.manual_seed(0)
random.seed(0)
layer = nn.Linear(2, 3)
with torch.no_grad():
    layer.weight.copy_(torch.tensor([[0.0, -2e-2], [0.3, 1.0], [1e-2, 0.0]]))
    layer.bias.copy_(torch.tensor([-0.3, 0.0, -2e-2]))
layer = torch.nn.utils.weight_norm(layer, dim=0)
hook = next(iter(layer._forward_pre_hooks.values()))
opt = torch.optim.Adam(layer.parameters(), lr=2e-3)
names = ["input", "weight", "forward", "loss", "zero_grad", "backward", "step"]
best = [float("inf")] * len(names)
clock = time.perf_counter_ns
for r in range(rounds + 1):
    sums = [0] * len(names)
    for _ in range(steps):
        t0 = clock()
        x = torch.randn(10, 2) * random.random() * 10
        t1 = clock()
        hook(layer, (x,))  # the forward pre-hook: weight = _weight_norm(v, g, 0)
        t2 = clock()
        out = nn.functional.linear(x, layer.weight, layer.bias)
        t3 = clock()
        loss = 1 - out.mean()
        t4 = clock()
        opt.zero_grad()
        t5 = clock()
        loss.backward()
        t6 = clock()
        opt.step()
        t7 = clock()
        for i, (a, b) in enumerate(zip([t0, t1, t2, t3, t4, t5, t6], [t1, t2, t3, t4, t5, t6, t7])):
            sums[i] += b - a
    if r:
        best = [min(b, s / steps / 1e3) for b, s in zip(best, sums)]
for n, b in zip(names, best):
    print(f"{n:>10} {b:8.2f} us")
print(f"{'total':>10} {sum(best):8.2f} us")
