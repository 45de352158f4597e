"""Independent references for norm-tch/tests/guards_and_sigma.rs (NumPy / torch.linalg, float64).

Reads JSON on stdin:
  {"svd": [matrix, ...], "wn": [{"v": [...], "g": [...], "rows": h, "eps": e}], "floor": [{"w": [...], "sigma": s, "floor": f}]}
and prints
  {"svd": [[singular values, descending], ...], "wn": [[w...], ...], "floor": [[w...], ...]}
where svd is torch.linalg.svdvals of each matrix (float64), wn is weight norm with dim 0 on a
matrix of `rows` rows, `g * v / max(||v_row||, eps)`, and floor is `w / max(sigma, floor)`.
"""
import json
import sys

import numpy as np
import torch

req = json.load(sys.stdin)
out = {"svd": [], "wn": [], "floor": []}
for m in req.get("svd", []):
    out["svd"].append(torch.linalg.svdvals(torch.tensor(m, dtype=torch.float64)).tolist())
for c in req.get("wn", []):
    v = np.array(c["v"], dtype=np.float64).reshape(c["rows"], -1)
    g = np.array(c["g"], dtype=np.float64).reshape(c["rows"], 1)
    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
    out["wn"].append((g * v / np.maximum(norm, c["eps"])).reshape(-1).tolist())
for c in req.get("floor", []):
    w = np.array(c["w"], dtype=np.float64)
    out["floor"].append((w / max(c["sigma"], c["floor"])).tolist())
print(json.dumps(out))
