"""PyTorch's side of norm-tch/tests/adam_paths.rs: torch.optim.Adam / AdamW with the given
foreach / fused / amsgrad / maximize / weight_decay over seeded parameters and gradients.

Reads a JSON list of runs on stdin, prints one JSON list of results on stdout. A run:
`{"seed", "kind": "adam" | "adamw", "options": {keyword arguments, betas as a list},
"params": [{"shape": [int], "dtype": "float32" | "float64" | "complex64"}], "steps",
"skip": int, "checks": [step numbers]}`. After `torch.manual_seed(seed)` the parameters are
`torch.randn(shape, dtype=dtype)` in order; at each step every parameter draws a gradient
`torch.randn(shape, dtype=dtype)` in order, and parameter `i` keeps it unless `skip > 0` and
`(step + i) % skip == 0` (its `.grad` is then None, so step counts differ between parameters).
At each step in `checks` the result records, as hex of the raw little-endian bytes, every
parameter and its `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (names `param.i`, ...) and the
`step` value of its state. A run PyTorch rejects (construction or a step) records
`{"error": {"type", "message", "stage"}}`.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
import norm_helpers  # noqa: E402

norm_helpers.quiet_warnings()
norm_helpers.pin_threads()

DTYPES = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64}


def hexbytes(t):
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def error(stage, e):
    return {"error": {"type": type(e).__name__, "message": str(e), "stage": stage}}


def run(spec):
    torch.manual_seed(spec["seed"])
    device = spec.get("device", "cpu")
    specs = spec["params"]
    params = [torch.randn(p["shape"], dtype=DTYPES[p["dtype"]]).to(device).requires_grad_(True) for p in specs]
    options = dict(spec["options"])
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    cls = torch.optim.AdamW if spec["kind"] == "adamw" else torch.optim.Adam
    try:
        opt = cls(params, **options)
    except Exception as e:  # noqa: BLE001 - PyTorch's error is the result
        return error("construction", e)
    checks, skip = [], spec["skip"]
    for step in range(1, spec["steps"] + 1):
        grads = [torch.randn(p["shape"], dtype=DTYPES[p["dtype"]]).to(device) for p in specs]
        for i, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if skip > 0 and (step + i) % skip == 0 else g
        try:
            opt.step()
        except Exception as e:  # noqa: BLE001
            return error(f"step {step}", e)
        if step in spec["checks"]:
            tensors, steps = {}, {}
            for i, p in enumerate(params):
                tensors[f"param.{i}"] = hexbytes(p)
                state = opt.state.get(p, {})
                for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    if key in state:
                        tensors[f"{key}.{i}"] = hexbytes(state[key])
                if "step" in state:
                    steps[str(i)] = float(state["step"])
            checks.append({"step": step, "tensors": tensors, "steps": steps})
    return {"checks": checks}


def main():
    runs = json.load(sys.stdin)
    json.dump([run(r) for r in runs], sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
