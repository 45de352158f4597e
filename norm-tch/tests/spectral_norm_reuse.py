"""PyTorch's side of norm-tch/tests/spectral_norm_reuse.rs: the hook API's training
forward (`torch.nn.utils.spectral_norm`, `SpectralNorm.compute_weight` run by its forward
pre-hook) over a few Adam steps, for norm's reuse of the last power iteration's `mv(W, v)`.

Each case: `torch.manual_seed(seed)`; `w = randn(shape)`, `g = randn(shape)`; a module
holding `weight = Parameter(w)` gets `spectral_norm(m, n_power_iterations=k, dim=dim)`
(drawing u, v); `Adam([weight_orig], lr)`; then per step: the pre-hook (training mode),
`loss = (m.weight * g).sum()`, `zero_grad`, `backward`, record, `step`.

Reads a JSON list of cases on stdin, prints a JSON list of results: per step the loss,
weight, u, v and weight_orig.grad as float32 bits, and the final weight_orig.
"""
import json
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.spectral_norm import SpectralNorm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
import norm_helpers  # noqa: E402

norm_helpers.pin_threads()


def run(c):
    torch.manual_seed(c["seed"])
    w = torch.randn(c["shape"])
    g = torch.randn(c["shape"])
    m = nn.Module()
    m.weight = nn.Parameter(w)
    torch.nn.utils.spectral_norm(m, n_power_iterations=c["k"], dim=c["dim"])
    hook = next(h for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm))
    opt = torch.optim.Adam([m.weight_orig], lr=c["lr"])
    steps = []
    for _ in range(c["steps"]):
        hook(m, None)
        loss = (m.weight * g).sum()
        opt.zero_grad()
        loss.backward()
        steps.append(
            {
                "loss": norm_helpers.bits(loss),
                "weight": norm_helpers.bits(m.weight),
                "u": norm_helpers.bits(m.weight_u),
                "v": norm_helpers.bits(m.weight_v),
                "grad": norm_helpers.bits(m.weight_orig.grad),
            }
        )
        opt.step()
    return {"steps": steps, "weight_orig": norm_helpers.bits(m.weight_orig)}


print(json.dumps([run(c) for c in json.load(sys.stdin)]))
