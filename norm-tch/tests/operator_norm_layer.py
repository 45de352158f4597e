"""Independent references for norm-tch/tests/operator_norm_layer.rs (the operator-norm layer).

Reads one JSON object on stdin, prints one JSON object on stdout. Modes:

- "dense": opnorm_reference.dense_sigma per case (the dense operator matrix of PyTorch's
  convolution in float64, numpy.linalg.svd): {"sigma": [...]}.
- "pytorch_sn": PyTorch's own torch.nn.utils.spectral_norm on an nn.Conv2d holding the given
  weight: `iterations` training forwards (u, v drawn after torch.manual_seed(seed)), then the
  dense operator norm of the normalized `module.weight` on `input_size`:
  {"sigma_normalized": [...], "sigma_reshaped": [...]} (the latter: the reshaped normalized
  weight's matrix 2-norm, ~1).
- "grad": PyTorch autograd of the layer's formula, in float64, for a zero-padded Conv2d:
  weight = w / sigma, sigma = sum(u * conv2d(v, w, stride, padding, dilation, groups)),
  loss = sum(weight * cotangent): {"grad": d loss / d w (flat), "sigma": sigma}.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opnorm_reference import dense_sigma  # noqa: E402

torch.set_num_threads(1)


def tensor(values, shape):
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def pytorch_sn(case):
    w = tensor(case["weight"], case["shape"])
    out_c, in_c = w.shape[0], w.shape[1]
    conv = torch.nn.Conv2d(in_c, out_c, list(w.shape[2:]), padding=case["padding"], bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(w)
    torch.manual_seed(case["seed"])
    conv = torch.nn.utils.spectral_norm(conv)
    x = torch.randn([1, in_c] + case["input_size"], dtype=torch.float64)
    conv.train()
    for _ in range(case["iterations"]):
        conv(x)
    normalized = conv.weight.detach()
    sigma = dense_sigma({"weight": normalized.flatten().tolist(), "shape": list(normalized.shape),
                         "transposed": False, "stride": [1, 1], "padding": case["padding"], "dilation": [1, 1],
                         "output_padding": [0, 0], "groups": 1, "circular": False,
                         "input_size": case["input_size"]})
    reshaped = float(torch.linalg.matrix_norm(normalized.reshape(out_c, -1), 2))
    return sigma, reshaped


def grad(case):
    w = tensor(case["weight"], case["shape"]).requires_grad_(True)
    u = tensor(case["u"], case["u_shape"])
    v = tensor(case["v"], case["v_shape"])
    cotangent = tensor(case["cotangent"], case["shape"])
    av = F.conv2d(v, w, None, case["stride"], case["padding"], case["dilation"], case["groups"])
    sigma = (u * av).sum()
    loss = (w / sigma * cotangent).sum()
    loss.backward()
    return {"grad": w.grad.flatten().tolist(), "sigma": float(sigma)}


def main():
    request = json.load(sys.stdin)
    mode = request["mode"]
    if mode == "dense":
        out = {"sigma": [dense_sigma(c) for c in request["cases"]]}
    elif mode == "pytorch_sn":
        pairs = [pytorch_sn(c) for c in request["cases"]]
        out = {"sigma_normalized": [p[0] for p in pairs], "sigma_reshaped": [p[1] for p in pairs]}
    elif mode == "grad":
        out = grad(request["case"])
    else:
        raise ValueError(mode)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
