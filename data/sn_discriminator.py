"""A small spectrally normalized GAN discriminator in PyTorch: the model side of
norm-tch/examples/sn_discriminator.rs and norm-tch/tests/examples.rs.

    .venv/bin/python data/sn_discriminator.py train --out torch.json [--seed 0] [--steps 4] [--batch 4] [--save torch.pt]
    .venv/bin/python data/sn_discriminator.py eval --checkpoint rust.pt --input input.json

The model (SNGAN-style, 1x16x16 images), spectral norm with PyTorch's defaults
(n_power_iterations=1, eps=1e-12, dim 0):

    convs.0 = spectral_norm(Conv2d(1, 8, 4, stride=2, padding=1))           hook API   -> 8x8
    convs.1 = parametrizations.spectral_norm(Conv2d(8, 16, 4, 2, padding=1)) param API  -> 4x4
    convs.2 = spectral_norm(Conv2d(16, 16, 3, stride=1, padding=1))           hook API   -> 4x4
    fc      = spectral_norm(Linear(16 * 4 * 4, 1))                           hook API

    forward(x):
        for conv in convs:
            x = F.leaky_relu(conv(x), 0.2)
        return fc(torch.flatten(x, 1))

State-dict keys: `convs.0.bias`, `convs.0.weight_orig`, `convs.0.weight_u`,
`convs.0.weight_v`, `convs.1.bias`, `convs.1.parametrizations.weight.original`,
`convs.1.parametrizations.weight.0._u`, `convs.1.parametrizations.weight.0._v`, ...,
`fc.weight_v`.

`train`: `torch.set_num_threads(1)`, `torch.manual_seed(seed)`, build the model (init draws,
then each spectral norm's u, v draws, layer by layer; the parametrization API also runs its
15 + 1 registration power iterations), `torch.optim.Adam(model.parameters(), lr=2e-4,
betas=(0.5, 0.999))`, then `steps` times, in training mode:

    real = torch.randn(batch, 1, 16, 16); fake = torch.randn(batch, 1, 16, 16)
    loss = F.relu(1.0 - D(real)).mean() + F.relu(1.0 + D(fake)).mean()     # hinge loss
    opt.zero_grad(); loss.backward(); opt.step()

(each forward runs one power iteration per layer), then `x = torch.randn(batch, 1, 16,
16)`, `model.eval()` and `D(x)` under `no_grad`. Writes one JSON object to `--out`:
`{"torch", "cpu_capability", "threads", "seed", "steps", "batch", "losses": [BITS per
step], "state_dict_keys": [...], "state_dict": {key: BITS}, "eval_input": BITS,
"eval_output": BITS}` where BITS is `{"shape": [int], "f32_bits": [u32, row-major]}`
(data/norm_helpers.py's `bits`); `--save` also `torch.save`s the trained state dict.

`eval`: builds the model, loads `torch.load(checkpoint, weights_only=True)` with
`load_state_dict(strict=True)`, puts it in eval mode and prints to stdout
`{"type": <type of the loaded object>, "keys": [...], "output": BITS}` for the input in
`--input` (`{"input": BITS}`).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrizations, spectral_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_helpers import (  # noqa: E402
    bits,
    machine,
    pin_threads,
    print_json,
    quiet_warnings,
    state_dict_bits,
    tensor_of,
    write_json,
)

quiet_warnings()
LRELU_SLOPE = 0.2
IMAGE = (1, 16, 16)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([
            spectral_norm(nn.Conv2d(1, 8, 4, stride=2, padding=1)),
            parametrizations.spectral_norm(nn.Conv2d(8, 16, 4, stride=2, padding=1)),
            spectral_norm(nn.Conv2d(16, 16, 3, stride=1, padding=1)),
        ])
        self.fc = spectral_norm(nn.Linear(16 * 4 * 4, 1))

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
        return self.fc(torch.flatten(x, 1))


def hinge_loss(d_real, d_fake):
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def train(args):
    torch.manual_seed(args.seed)
    model = Discriminator()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model.train()
    losses = []
    for step in range(1, args.steps + 1):
        real = torch.randn(args.batch, *IMAGE)
        fake = torch.randn(args.batch, *IMAGE)
        loss = hinge_loss(model(real), model(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(bits(loss))
        print(f"step {step}: loss {loss.item():.9g}", file=sys.stderr)
    x = torch.randn(args.batch, *IMAGE)
    model.eval()
    with torch.no_grad():
        y = model(x)
    sd = model.state_dict()
    result = {
        **machine(),
        "seed": args.seed,
        "steps": args.steps,
        "batch": args.batch,
        "losses": losses,
        "state_dict_keys": list(sd.keys()),
        "state_dict": state_dict_bits(sd),
        "eval_input": bits(x),
        "eval_output": bits(y),
    }
    if args.save:
        torch.save(sd, args.save)
    write_json(args.out, result)


def evaluate(args):
    torch.manual_seed(0)  # the fresh model's draws are overwritten by the checkpoint
    model = Discriminator()
    sd = torch.load(args.checkpoint, weights_only=True)
    model.load_state_dict(sd, strict=True)
    model.eval()
    with open(args.input) as f:
        x = tensor_of(json.load(f)["input"])
    with torch.no_grad():
        y = model(x)
    out = {"type": type(sd).__name__, "keys": list(sd.keys()), "output": bits(y)}
    print_json(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train from a seed, write losses, state dict and eval output as JSON")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, default=4)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--save", help="also torch.save the trained state dict here")
    e = sub.add_parser("eval", help="load a checkpoint strict, print the eval output for an input")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--input", required=True)
    args = ap.parse_args()
    pin_threads()
    if args.command == "train":
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
