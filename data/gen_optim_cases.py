"""Writes the optimizer block of the parity specs: every `torch.optim.Adam` / `AdamW`
option combination PyTorch accepts (kind x foreach x fused x amsgrad x maximize x
weight_decay 0 / non-0), and error cases for those it rejects (`foreach=True` with
`fused=True`: RuntimeError at construction).

    .venv/bin/python data/gen_optim_cases.py     # rewrite both specs' optimizer blocks

- data/parity_spec.json: the cases named `optim-*` and `error-optim-*` are replaced by the
  current ones (appended after the other cases, one case per line); the rest of the spec,
  edited by hand, is kept as it is.
- data/parity_cuda_spec.json: the same combinations with `"device": "cuda"` (where the
  default, `foreach=None, fused=None`, is the foreach path), plus a few layer/norm cases of
  the shipped spec on CUDA. It is what the GPU check runs
  (`norm-bench parity --spec data/parity_cuda_spec.json --live --python python3`).

Each running case is a small layer (4 layer/norm forms in turn) trained for 3 steps, one per
kind and path (default, foreach, fused) for 100; `foreach`/`fused` are written as `null` explicitly on every other case
whose value is None (omitted and `null` mean the same). After a change, regenerate the
goldens (data/gen_goldens.py) and say why in the commit.
"""
import itertools
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = [
    ({"kind": "linear", "in_features": 3, "out_features": 2, "bias": True},
     {"kind": "weight_norm", "api": "hooks"}, [4, 3]),
    ({"kind": "conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": [2], "bias": True},
     {"kind": "spectral_norm", "api": "parametrizations"}, [2, 2, 5]),
    ({"kind": "linear", "in_features": 4, "out_features": 3, "bias": False},
     {"kind": "spectral_norm", "api": "hooks"}, [2, 4]),
    ({"kind": "embedding", "num_embeddings": 5, "embedding_dim": 3},
     {"kind": "weight_norm", "api": "parametrizations", "dim": 1}, [2, 3]),
]
TRI = [None, True, False]
LONG_STEPS, STEPS = 100, 3
# One long case per kind and path (default, foreach, fused), with amsgrad and weight decay.
LONG_PATHS = [(None, None), (True, False), (None, True)]
# Layer/norm cases of the shipped spec that the CUDA spec repeats on CUDA.
CUDA_LAYER_CASES = [
    "linear-weight-hooks-dimomitted-train-adam",
    "linear-weight-param-dim0-eval-amsgradwd",
    "linear-spectral-hooks-dim1-train-amsgrad-nobias-npi3",
    "linear-spectral-param-dimnull-train-adamcustom-npi1",
    "conv1d-weight-param-dim2-train-adamwd",
    "conv2d-weight-hooks-dim2-train-adam",
    "conv2d-spectral-param-dim3-eval-adamwd",
    "conv3d-weight-hooks-dimneg2-eval-adam",
]


def is_optim(name):
    return name.startswith("optim-") or name.startswith("error-optim-")


def optimizer_cases(device=None):
    running, errors = [], []
    combos = itertools.product(["adam", "adamw"], TRI, TRI, [False, True], [False, True], [0.0, 0.05])
    for i, (kind, foreach, fused, amsgrad, maximize, wd) in enumerate(combos):
        tri = {None: "none", True: "true", False: "false"}
        name = (f"optim-{kind}-foreach{tri[foreach]}-fused{tri[fused]}-{'amsgrad' if amsgrad else 'noams'}"
                f"-{'max' if maximize else 'min'}-wd{'0' if wd == 0 else wd}")
        opt = {"kind": kind, "lr": 0.01, "betas": [0.8, 0.99]}
        if wd != 0 or kind == "adamw":  # AdamW's default weight_decay is 1e-2: say 0 explicitly
            opt["weight_decay"] = wd
        opt["amsgrad"] = amsgrad
        opt["maximize"] = maximize
        if foreach is not None or i % 2:
            opt["foreach"] = foreach
        if fused is not None or i % 2:
            opt["fused"] = fused
        layer, norm, shape = LAYERS[i % len(LAYERS)]
        rejected = foreach is True and fused is True
        long = (foreach, fused) in LONG_PATHS and amsgrad and wd != 0 and maximize == (kind == "adam")
        steps = 1 if rejected else LONG_STEPS if long else STEPS
        case = {"name": ("error-" if rejected else "") + name, "seed": 7000 + i, "layer": layer, "norm": norm,
                "mode": "train", "input_shape": shape, "steps": steps, "optimizer": opt}
        if device is not None:
            case["device"] = device
        (errors if rejected else running).append(case)
    return running + errors


def write_spec(path, cases):
    lines = ",\n".join(json.dumps(c) for c in cases)
    with open(path + ".tmp", "w") as f:
        f.write('{"cases": [\n' + lines + "\n]}\n")
    os.replace(path + ".tmp", path)


def main():
    shipped_path = os.path.join(HERE, "parity_spec.json")
    with open(shipped_path) as f:
        shipped = json.load(f)["cases"]
    kept = [c for c in shipped if not is_optim(c["name"])]
    write_spec(shipped_path, kept + optimizer_cases())
    by_name = {c["name"]: c for c in kept}
    cuda_layers = [dict(by_name[n], name="cuda-" + n, device="cuda") for n in CUDA_LAYER_CASES]
    write_spec(os.path.join(HERE, "parity_cuda_spec.json"), optimizer_cases("cuda") + cuda_layers)
    print(f"wrote {shipped_path} ({len(kept)} + {len(optimizer_cases())} cases) and parity_cuda_spec.json")


if __name__ == "__main__":
    main()
