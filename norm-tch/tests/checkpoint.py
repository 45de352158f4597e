"""PyTorch's side of norm-tch/tests/checkpoint.rs and norm-bench/tests/convert.rs.

The model is nn.Sequential(Conv1d(3, 4, 3), ConvTranspose1d(4, 5, 2), BatchNorm1d(5),
Linear(7, 6)) on inputs of shape [2, 3, 8]. Its normalized layers are 0, 1 and 3; a
"scheme list" names the scheme of each of them:

  folded      plain weight
  wn_hooks    torch.nn.utils.weight_norm(m, dim)                 dims: 0 -> 0, 1 -> 1, 3 -> None
  wn_param    torch.nn.utils.parametrizations.weight_norm(m, dim)
  sn_hooks    torch.nn.utils.spectral_norm(m)                    (default dims: 0, 1, 0)
  sn_param    torch.nn.utils.parametrizations.spectral_norm(m)

`checkpoint.py make DIR` writes, for each source (folded, wn_hooks, wn_param, sn_hooks,
sn_param, sn_legacy, mixed = [wn_param, sn_hooks, wn_hooks]), DIR/<source>.pt
(torch.save(model.state_dict())) and DIR/<source>.safetensors, after a few SGD steps in
training mode (so g != |v| and u, v have iterated), and DIR/expected.json with the eval
output of each on a fixed input, plus the outputs PyTorch gives for what it can do itself:
  folded->wn_hooks / folded->wn_param   the folded model, then weight_norm registered
  folded->sn_hooks / folded->sn_param   the folded model in training mode, torch.manual_seed(SEED),
                                        then spectral_norm registered on layers 0, 1, 3 in order
  sn_legacy                             a fresh sn_hooks model loading sn_legacy.pt through
                                        PyTorch's own SpectralNormLoadStateDictPreHook
and "upgraded": the weight_v PyTorch's hook computes for each legacy layer. sn_legacy.pt is
the sn_hooks model's state dict in spectral_norm's version-None layout: weight_orig,
weight_u and the buffer `weight` (the module's last computed weight), no weight_v, and no
spectral_norm version in _metadata.

Also: square_sn.pt (Sequential(Linear(5, 5)) with spectral_norm(dim=1): the stored shapes
cannot tell dim 0 from 1) and tiny_wn.pt (Sequential(Linear(1, 1)) with weight_norm(dim=1)),
with the weight remove_spectral_norm / remove_weight_norm gives.

`checkpoint.py check` reads {"items": [{"path", "model": "main" | "square" | "tiny" | "none",
"schemes": [3 names] (main only)}]} on stdin, loads each file into a PyTorch model of those
schemes with load_state_dict(strict=True) (.pt through torch.load(weights_only=True)), and
prints per item the eval output, the loaded object's type, and every entry (dtype, shape,
raw bytes as hex), or the exception. Model "none" only loads the file.

Also written by make: views.pt (strided views of one storage, offsets, every common dtype,
empty and 0-dim tensors, pickle protocol 4; expected["views"] has their entries), nested.pt
({"model": state_dict, "epoch": 3}) and scripted.pt (a TorchScript archive).

Bits: float32 outputs as unsigned 32-bit integers, row-major.
"""
import copy
import json
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
import norm_helpers  # noqa: E402

norm_helpers.quiet_warnings()
norm_helpers.pin_threads()

SEED = 1234
LAYERS = [0, 1, 3]
WN_DIMS = {0: 0, 1: 1, 3: None}
SOURCES = {
    "folded": ["folded"] * 3,
    "wn_hooks": ["wn_hooks"] * 3,
    "wn_param": ["wn_param"] * 3,
    "sn_hooks": ["sn_hooks"] * 3,
    "sn_param": ["sn_param"] * 3,
    "mixed": ["wn_param", "sn_hooks", "wn_hooks"],
}


def bits(t):
    """`{"shape", "bits"}`: the key tests/checkpoint.rs and norm-bench's tests/convert.rs read."""
    return norm_helpers.bits(t, key="bits")


def base_model():
    return nn.Sequential(nn.Conv1d(3, 4, 3), nn.ConvTranspose1d(4, 5, 2), nn.BatchNorm1d(5), nn.Linear(7, 6))


def apply(model, schemes):
    for idx, scheme in zip(LAYERS, schemes):
        m = model[idx]
        if scheme == "folded":
            continue
        elif scheme == "wn_hooks":
            nn.utils.weight_norm(m, dim=WN_DIMS[idx])
        elif scheme == "wn_param":
            parametrizations.weight_norm(m, dim=WN_DIMS[idx])
        elif scheme == "sn_hooks":
            nn.utils.spectral_norm(m)
        elif scheme == "sn_param":
            parametrizations.spectral_norm(m)
        else:
            raise ValueError(scheme)
    return model


def eval_out(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def save_both(sd, directory, name):
    from safetensors.torch import save_file

    torch.save(sd, os.path.join(directory, name + ".pt"))
    save_file({k: v.detach().contiguous() for k, v in sd.items()}, os.path.join(directory, name + ".safetensors"))


def make(directory):
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(0)
    base = base_model()
    base.train()
    for _ in range(3):
        base(torch.randn(2, 3, 8))
    x = torch.randn(2, 3, 8)
    expected = {"input": bits(x), "torch": torch.__version__, "seed": SEED}
    outputs = {}

    folded_sd = base.state_dict()
    save_both(folded_sd, directory, "folded")
    outputs["folded"] = bits(eval_out(copy.deepcopy(base), x))

    trained = {}
    for i, (name, schemes) in enumerate(SOURCES.items()):
        if name == "folded":
            continue
        torch.manual_seed(10 + i)
        m = copy.deepcopy(base)
        m.train()
        apply(m, schemes)
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        for _ in range(3):
            loss = m(torch.randn(2, 3, 8)).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        outputs[name] = bits(eval_out(m, x))  # eval forward: hooks' module.weight is now W_orig / sigma
        save_both(m.state_dict(), directory, name)
        trained[name] = m

    # The version-None spectral_norm layout, from the trained sn_hooks model.
    m = trained["sn_hooks"]
    sd = m.state_dict()
    legacy = OrderedDict()
    for k, v in sd.items():
        idx = int(k.split(".")[0])
        if k.endswith(".weight_v"):
            continue
        legacy[k] = v
        if k.endswith(".weight_u"):
            legacy[k[: -len("_u")]] = m[idx].weight.detach().clone()
    meta = copy.deepcopy(sd._metadata)
    for local in meta.values():
        local.pop("spectral_norm", None)
    legacy._metadata = meta
    save_both(legacy, directory, "sn_legacy")
    fresh = apply(copy.deepcopy(base), SOURCES["sn_hooks"])
    fresh.load_state_dict(torch.load(os.path.join(directory, "sn_legacy.pt"), weights_only=True), strict=True)
    outputs["sn_legacy"] = bits(eval_out(fresh, x))
    expected["upgraded"] = {f"{i}.weight_v": bits(fresh[i].weight_v) for i in LAYERS}
    fresh2 = apply(copy.deepcopy(base), SOURCES["sn_hooks"])
    from safetensors.torch import load_file

    fresh2.load_state_dict(load_file(os.path.join(directory, "sn_legacy.safetensors")), strict=True)
    assert bits(eval_out(fresh2, x)) == outputs["sn_legacy"], "PyTorch upgrades the .safetensors legacy file differently"

    # What PyTorch gives when it registers a normalization on the folded model itself.
    for scheme in ["wn_hooks", "wn_param"]:
        m = apply(copy.deepcopy(base), [scheme] * 3)
        outputs["folded->" + scheme] = bits(eval_out(m, x))
    for scheme in ["sn_hooks", "sn_param"]:
        m = copy.deepcopy(base)
        m.train()
        torch.manual_seed(SEED)
        apply(m, [scheme] * 3)
        outputs["folded->" + scheme] = bits(eval_out(m, x))

    # Checkpoints whose shapes leave a dim undecided.
    torch.manual_seed(7)
    sq = nn.Sequential(nn.Linear(5, 5))
    nn.utils.spectral_norm(sq[0], dim=1)
    sq.train()
    sq(torch.randn(3, 5))
    torch.save(sq.state_dict(), os.path.join(directory, "square_sn.pt"))
    nn.utils.remove_spectral_norm(sq[0])
    expected["square_sn_weight"] = bits(sq[0].weight)
    torch.manual_seed(8)
    tiny = nn.Sequential(nn.Linear(1, 1))
    nn.utils.weight_norm(tiny[0], dim=1)
    with torch.no_grad():
        tiny[0].weight_g.mul_(1.5)
    torch.save(tiny.state_dict(), os.path.join(directory, "tiny_wn.pt"))
    nn.utils.remove_weight_norm(tiny[0])
    expected["tiny_wn_weight"] = bits(tiny[0].weight)

    # Storage layouts and dtypes beyond a plain state dict: views with strides and offsets
    # into one shared storage, every common dtype, an empty and a 0-dim tensor, a nested
    # checkpoint, pickle protocol 4.
    x24 = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = OrderedDict(
        t=x24.t(),
        tail=x24[1:, 2:],
        same=x24,
        half=torch.randn(3).half(),
        bf=torch.randn(3).bfloat16(),
        f64=torch.randn(2, 2, dtype=torch.float64),
        flags=torch.tensor([True, False, True]),
        idx=torch.arange(3),
        i32=torch.arange(4, dtype=torch.int32),
        i8=torch.tensor([-3, 4], dtype=torch.int8),
        u8=torch.tensor([200, 1], dtype=torch.uint8),
        empty=torch.zeros(0, 3),
        scalar=torch.tensor(2.5, dtype=torch.float64),
    )
    torch.save(views, os.path.join(directory, "views.pt"), pickle_protocol=4)
    expected["views"] = {k: entry(v) for k, v in views.items()}
    torch.save({"model": folded_sd, "epoch": 3}, os.path.join(directory, "nested.pt"))
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), os.path.join(directory, "scripted.pt"))

    expected["outputs"] = outputs
    with open(os.path.join(directory, "expected.json"), "w") as f:
        json.dump(expected, f)


def entry(t):
    t = t.detach().contiguous().cpu()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() > 0 else b""
    return {"dtype": str(t.dtype), "shape": list(t.shape), "hex": raw.hex()}


def check(request):
    torch.manual_seed(0)
    base = base_model()
    x = norm_helpers.tensor_of(request["input"], key="bits") if "input" in request else None
    results = []
    for item in request["items"]:
        path = item["path"]
        try:
            if path.endswith(".safetensors"):
                from safetensors.torch import load_file

                sd = load_file(path)
                kind = "dict"
            else:
                sd = torch.load(path, weights_only=True)
                kind = type(sd).__name__
            model_name = item.get("model", "main")
            if model_name == "main":
                model = apply(copy.deepcopy(base), item["schemes"])
            elif model_name == "square":
                model = nn.Sequential(nn.Linear(5, 5))
                if item.get("schemes", ["folded"])[0] == "sn_hooks":
                    nn.utils.spectral_norm(model[0], dim=1)
            elif model_name == "none":
                results.append({"type": kind, "entries": {k: entry(v) for k, v in sd.items()}})
                continue
            elif model_name == "tiny":
                model = nn.Sequential(nn.Linear(1, 1))
                if item.get("schemes", ["folded"])[0] == "wn_hooks":
                    nn.utils.weight_norm(model[0], dim=1)
            else:
                raise ValueError(model_name)
            model.load_state_dict(sd, strict=True)
            result = {"type": kind, "entries": {k: entry(v) for k, v in sd.items()}}
            if model_name == "main" and x is not None:
                result["output"] = bits(eval_out(model, x))
            results.append(result)
        except Exception as e:  # reported to the Rust side, which fails the test
            results.append({"error": f"{type(e).__name__}: {e}"})
    print(json.dumps({"torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "check":
        check(json.load(sys.stdin))
    else:
        sys.exit("usage: checkpoint.py make DIR | checkpoint.py check < request.json")
