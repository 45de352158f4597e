"""PyTorch's side of norm-tch/tests/layer_init.rs: builds nn.Conv{1,2,3}d,
nn.ConvTranspose{1,2,3}d and nn.Embedding right after torch.manual_seed(seed) and prints
their init draws, one following torch.randn(4) (the generator state construction leaves
behind) and the layer's forward on an input given as float32 bits (or int64 indices).

A case PyTorch rejects reports where ("construct" or "forward") and what it raised
(`error_stage`, `error_type`); its `next_randn` then shows what the failed construction drew.

Reads a JSON list of cases on stdin, prints one JSON list of results on stdout. Bits are
unsigned 32-bit integers of the float32 values, row-major.
"""
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
import norm_helpers  # noqa: E402
from norm_helpers import from_bits  # noqa: E402

norm_helpers.quiet_warnings()  # kaiming_uniform_ on zero-element tensors etc.
norm_helpers.pin_threads()

CONV = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d}
CONV_T = {"conv_transpose1d": nn.ConvTranspose1d, "conv_transpose2d": nn.ConvTranspose2d, "conv_transpose3d": nn.ConvTranspose3d}


def bits(t):
    """`{"shape", "bits"}`: the key tests/layer_init.rs reads."""
    return norm_helpers.bits(t, key="bits")


def build(c):
    kind = c["kind"]
    if kind == "embedding":
        return nn.Embedding(c["num_embeddings"], c["embedding_dim"], padding_idx=c["padding_idx"])
    common = dict(
        stride=tuple(c["stride"]),
        padding=tuple(c["padding"]),
        dilation=tuple(c["dilation"]),
        groups=c["groups"],
        bias=c["bias"],
    )
    if kind in CONV:
        return CONV[kind](c["in_channels"], c["out_channels"], tuple(c["kernel_size"]), padding_mode=c["padding_mode"], **common)
    return CONV_T[kind](c["in_channels"], c["out_channels"], tuple(c["kernel_size"]), output_padding=tuple(c["output_padding"]), **common)


def run(c):
    torch.manual_seed(c["seed"])
    try:
        layer = build(c)
    except Exception as e:  # noqa: BLE001 -- the type is the result
        return {"error_stage": "construct", "error_type": type(e).__name__, "next_randn": bits(torch.randn(4))}
    next_randn = torch.randn(4)
    if c["kind"] == "embedding":
        x = torch.tensor(c["indices"], dtype=torch.int64).reshape(c["input_shape"])
    else:
        x = from_bits(c["input_shape"], c["input_bits"])
    bias = getattr(layer, "bias", None)
    out = {
        "weight": bits(layer.weight),
        "bias": None if bias is None else bits(bias),
        "next_randn": bits(next_randn),
    }
    try:
        with torch.no_grad():
            out["forward"] = bits(layer(x))
    except Exception as e:  # noqa: BLE001
        out.update(error_stage="forward", error_type=type(e).__name__)
    return out


def main():
    cases = json.load(sys.stdin)
    json.dump({"torch": torch.__version__, "results": [run(c) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
