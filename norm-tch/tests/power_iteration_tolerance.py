"""Independent references for norm-tch/tests/power_iteration_tolerance.rs (NumPy / torch, float64).

Reads JSON on stdin:
  {"svd": [matrix, ...],
   "count": [{"w": matrix, "u": [...], "v": [...], "api": "hooks"|"parametrizations",
              "n": int, "tolerance": float, "max": int, "eps": float}],
   "draws": [{"seed": int, "h": int, "w": int, "eps": float}],
   "pt": [{"path": str, "x": matrix, "in": int, "out": int, "prefix": str}]}
and prints
  {"svd": [[singular values, descending]], "count": [iterations], "draws": [{"u": [...], "v": [...]}],
   "pt": [eval outputs as float32 bit patterns]}

svd is torch.linalg.svdvals (float64). count re-implements norm's stopping rule in NumPy:
the API's own step, at least n times, then until
sqrt((|Wv - s u|^2 + |W^T u - s v|^2) / (|u|^2 + |v|^2)) <= tolerance * |s| with s = u . Wv,
checked where both products are at hand, or max iterations. draws re-implements the seeded
warm start: splitmix64 -> Box-Muller in float64, u the first h normals, v the next w, each
normalized. pt loads a torch.save'd state dict into torch.nn.utils.spectral_norm(nn.Linear)
(hook API) and runs its eval forward on x.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def normals(seed, n):
    out, state = [], seed
    while len(out) < n:
        state, a = splitmix64(state)
        state, b = splitmix64(state)
        u1 = ((a >> 11) + 1) * 2.0**-53
        u2 = (b >> 11) * 2.0**-53
        r = math.sqrt(-2.0 * math.log(u1))
        out += [r * math.cos(2.0 * math.pi * u2), r * math.sin(2.0 * math.pi * u2)]
    return np.array(out[:n])


def normalize(x, eps):
    return x / max(np.linalg.norm(x), eps)


def bound(u, v, wv, wtu):
    s = u @ wv
    r1, r2 = wv - s * u, wtu - s * v
    return s, math.sqrt((r1 @ r1 + r2 @ r2) / (u @ u + v @ v))


def count(c):
    w = np.array(c["w"], dtype=np.float64)
    u, v = np.array(c["u"]), np.array(c["v"])
    n, tol, most, eps = c["n"], c["tolerance"], c["max"], c["eps"]
    k, last = 0, None
    while k < most:
        if c["api"] == "hooks":
            wtu = w.T @ u
            if k >= n and last is not None:
                s, b = bound(u, v, last, wtu)
                if b <= tol * abs(s):
                    break
            v = normalize(wtu, eps)
            wv = w @ v
            u = normalize(wv, eps)
            last = wv
        else:
            wv = w @ v
            if k >= n and last is not None:
                s, b = bound(u, v, wv, last)
                if b <= tol * abs(s):
                    break
            u = normalize(wv, eps)
            wtu = w.T @ u
            v = normalize(wtu, eps)
            last = wtu
        k += 1
    return k


def pt(c):
    sd = torch.load(c["path"], weights_only=True)
    m = torch.nn.utils.spectral_norm(torch.nn.Linear(c["in"], c["out"]))
    m.load_state_dict({k[len(c["prefix"]):]: t for k, t in sd.items() if k.startswith(c["prefix"])})
    m.eval()
    with torch.no_grad():
        y = m(torch.tensor(c["x"], dtype=torch.float32))
    return [struct.unpack("<I", struct.pack("<f", float(f)))[0] for f in y.reshape(-1).tolist()]


req = json.load(sys.stdin)
torch.set_num_threads(1)
out = {
    "svd": [torch.linalg.svdvals(torch.tensor(m, dtype=torch.float64)).tolist() for m in req.get("svd", [])],
    "count": [count(c) for c in req.get("count", [])],
    "draws": [],
    "pt": [pt(c) for c in req.get("pt", [])],
}
for d in req.get("draws", []):
    z = normals(d["seed"], d["h"] + d["w"])
    out["draws"].append({"u": normalize(z[: d["h"]], d["eps"]).tolist(), "v": normalize(z[d["h"]:], d["eps"]).tolist()})
print(json.dumps(out))
