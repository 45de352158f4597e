"""PyTorch's side of norm-tch/tests/cuda.rs: normalized layers built, run forward in
training mode and backpropagated on a device ("cpu" or "cuda"), every step as the Rust
side takes it.

For each case: torch.manual_seed(seed); the layer built (its init draws on the CPU, as
PyTorch builds modules) and moved with .to(device); the normalization registered on the
device (spectral norm's u, v drawn by the device's generator); the input drawn on the CPU
(randn, or randint for Embedding) and moved; y = layer(x) in training mode;
(y * y).sum().backward().

Reads {"device", "seed", "cases": [names]} on stdin; prints {"torch", "cuda_available",
"results": {name: {"out", "values", "grads"}}} where values and grads map PyTorch's
parameter and buffer names to float32 bits.
"""
import json
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations, spectral_norm, weight_norm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
import norm_helpers  # noqa: E402

norm_helpers.quiet_warnings()  # the deprecated torch.nn.utils.weight_norm
norm_helpers.pin_threads()


def bits(t):
    return norm_helpers.bits(t)


# name -> (layer constructor, normalization, input constructor); every name is one in cuda.rs.
CASES = {
    "linear_weight_norm": (lambda: nn.Linear(6, 4), lambda m: weight_norm(m), lambda: torch.randn(8, 6)),
    "linear_weight_norm_param": (lambda: nn.Linear(6, 4), lambda m: parametrizations.weight_norm(m), lambda: torch.randn(8, 6)),
    "linear_spectral_norm": (lambda: nn.Linear(6, 4), lambda m: spectral_norm(m), lambda: torch.randn(8, 6)),
    "linear_spectral_norm_param": (lambda: nn.Linear(6, 4), lambda m: parametrizations.spectral_norm(m), lambda: torch.randn(8, 6)),
    "embedding_weight_norm": (lambda: nn.Embedding(10, 5), lambda m: weight_norm(m), lambda: torch.randint(0, 10, (3, 4))),
    "conv1d_weight_norm": (lambda: nn.Conv1d(3, 4, 3), lambda m: weight_norm(m), lambda: torch.randn(2, 3, 9)),
    "conv_transpose1d_spectral_norm": (lambda: nn.ConvTranspose1d(4, 3, 3), lambda m: spectral_norm(m), lambda: torch.randn(2, 4, 5)),
}


def run(name, device, seed):
    make_layer, normalize, make_input = CASES[name]
    torch.manual_seed(seed)
    m = normalize(make_layer().to(device))
    m.train()
    x = make_input().to(device)
    y = m(x)
    (y * y).sum().backward()
    values = {k: bits(t) for k, t in list(m.named_parameters()) + list(m.named_buffers())}
    grads = {k: bits(p.grad) for k, p in m.named_parameters() if p.grad is not None}
    return {"out": bits(y), "values": values, "grads": grads}


def main():
    request = json.load(sys.stdin)
    device = torch.device(request["device"])
    results = {name: run(name, device, request["seed"]) for name in request["cases"]}
    if device.type == "cuda":
        torch.cuda.synchronize()
    json.dump({"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
