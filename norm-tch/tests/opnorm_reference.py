"""Independent references for norm-tch/tests/operator_norm.rs and weight_norm_init.rs.

Reads one JSON object on stdin, prints one JSON object on stdout. Modes:

- "dense": for each case (a float64 weight, its geometry, an input size), the dense matrix
  of the convolution operator, built by applying PyTorch's convolution (F.conv*d /
  F.conv_transpose*d, circular mode through F.pad) in float64 to every basis vector of the
  input space at once, then numpy.linalg.svd: {"sigma": [largest singular value per case]}.
- "fft": Sedghi, Gupta & Long (2019): for a circular 2-D convolution at stride 1 on an
  n1 x n2 input, the singular values are those of the per-frequency matrices
  P[u, v] = FFT2(kernel, zero-padded to n1 x n2)[:, :, u, v] (out x in):
  {"sigma": [max over all frequencies of the largest singular value, per case]}.
- "layers": parity-spec layers (norm-bench operator-norm's cases) built after
  torch.manual_seed(seed): the reshaped weight's sigma and the dense operator's sigma.
- "wn_init": Salimans & Kingma's data-dependent init in NumPy: t = (v/||v||) . x by explicit
  loops (linear, conv1d, conv_transpose1d at a stride/padding), biased mean/std over batch and
  positions: {"g": [...], "b": [...]} per case.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def dense_sigma(case):
    w = torch.tensor(case["weight"], dtype=torch.float64).reshape(case["shape"])
    n_spatial = len(case["input_size"])
    c_in = case["shape"][1] * case["groups"] if not case["transposed"] else case["shape"][0]
    size = [c_in] + case["input_size"]
    n = int(np.prod(size))
    basis = torch.eye(n, dtype=torch.float64).reshape([n] + size)
    if case["transposed"]:
        f = [None, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][n_spatial]
        out = f(basis, w, None, case["stride"], case["padding"], case["output_padding"], case["groups"],
                case["dilation"])
    else:
        f = [None, F.conv1d, F.conv2d, F.conv3d][n_spatial]
        if case["circular"]:
            pad = [p for p in reversed(case["padding"]) for _ in range(2)]
            out = f(F.pad(basis, pad, mode="circular"), w, None, case["stride"], 0, case["dilation"], case["groups"])
        else:
            out = f(basis, w, None, case["stride"], case["padding"], case["dilation"], case["groups"])
    matrix = out.reshape(n, -1).T.numpy()
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def fft_sigma(case):
    k = np.array(case["weight"], dtype=np.float64).reshape(case["shape"])
    n1, n2 = case["n"]
    transforms = np.fft.fft2(k, s=(n1, n2), axes=(2, 3))  # [out, in, n1, n2]
    per_freq = np.transpose(transforms, (2, 3, 0, 1))  # [n1, n2, out, in]
    return float(np.linalg.svd(per_freq, compute_uv=False).max())


def wn_init(case):
    v = np.array(case["v"], dtype=np.float64).reshape(case["v_shape"])
    x = np.array(case["x"], dtype=np.float64).reshape(case["x_shape"])
    kind = case["kind"]
    if kind == "linear":
        d = v / np.sqrt((v ** 2).sum(axis=1, keepdims=True))
        t = x.reshape(-1, x.shape[-1]) @ d.T  # [count, out]
    elif kind == "conv1d":
        s, p = case["stride"], case["padding"]
        d = v / np.sqrt((v ** 2).sum(axis=(1, 2), keepdims=True))  # [out, in, k]
        xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
        k = d.shape[2]
        length = (xp.shape[2] - k) // s + 1
        t = np.zeros((x.shape[0], d.shape[0], length))
        for i in range(length):
            t[:, :, i] = np.einsum("nck,ock->no", xp[:, :, i * s:i * s + k], d)
        t = t.transpose(0, 2, 1).reshape(-1, d.shape[0])
    elif kind == "conv_transpose1d":
        s, p = case["stride"], case["padding"]
        d = v / np.sqrt((v ** 2).sum(axis=(0, 2), keepdims=True))  # [in, out, k]; dim 1
        n, c_in, length = x.shape
        k = d.shape[2]
        full = np.zeros((n, d.shape[1], (length - 1) * s + k))
        for i in range(length):
            full[:, :, i * s:i * s + k] += np.einsum("nc,cok->nok", x[:, :, i], d)
        t = full[:, :, p:full.shape[2] - p]
        t = t.transpose(0, 2, 1).reshape(-1, d.shape[1])
    else:
        raise ValueError(kind)
    mean = t.mean(axis=0)
    std = np.sqrt(t.var(axis=0) + case["eps"])  # biased variance
    g = case["init_scale"] / std
    return {"g": g.tolist(), "b": (-mean * g).tolist()}


def spec_layer(case):
    """A parity-spec layer built right after torch.manual_seed(seed), as data/parity.py builds it:
    {"sigma_reshaped", "sigma_operator"} (reshaped weight's matrix 2-norm; dense operator SVD)."""
    torch.manual_seed(case["seed"])
    layer = case["layer"]
    kind = layer["kind"]
    if kind == "linear":
        m = torch.nn.Linear(layer["in_features"], layer["out_features"], bias=layer["bias"])
        w = m.weight.detach().double()
        return {"sigma_reshaped": float(torch.linalg.matrix_norm(w, 2)),
                "sigma_operator": float(np.linalg.svd(w.numpy(), compute_uv=False)[0])}
    n = int(kind[-2])
    transposed = kind.startswith("conv_transpose")
    cls = getattr(torch.nn, ("ConvTranspose%dd" if transposed else "Conv%dd") % n)
    stride = layer.get("stride", [1] * n)
    padding = layer.get("padding", [0] * n)
    m = cls(layer["in_channels"], layer["out_channels"], layer["kernel_size"], stride=stride, padding=padding,
            bias=layer["bias"])
    w = m.weight.detach().double()
    mat = (w.transpose(0, 1) if transposed else w).reshape(w.shape[1] if transposed else w.shape[0], -1)
    dense = dense_sigma({"weight": w.flatten().tolist(), "shape": list(w.shape), "transposed": transposed,
                         "stride": stride, "padding": padding, "dilation": [1] * n, "output_padding": [0] * n,
                         "groups": 1, "circular": False, "input_size": case["input_size"]})
    return {"sigma_reshaped": float(torch.linalg.matrix_norm(mat, 2)), "sigma_operator": dense}


def main():
    request = json.load(sys.stdin)
    mode = request["mode"]
    if mode == "dense":
        out = {"sigma": [dense_sigma(c) for c in request["cases"]]}
    elif mode == "fft":
        out = {"sigma": [fft_sigma(c) for c in request["cases"]]}
    elif mode == "layers":
        out = {"cases": [spec_layer(c) for c in request["cases"]]}
    elif mode == "wn_init":
        out = {"cases": [wn_init(c) for c in request["cases"]]}
    else:
        raise ValueError(mode)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
