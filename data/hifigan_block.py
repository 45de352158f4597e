"""A small HiFi-GAN-style generator in PyTorch: the model side of
norm-tch/examples/hifigan_generator.rs and norm-tch/tests/examples.rs.

    .venv/bin/python data/hifigan_block.py --out gen.pt --io gen.json [--fold] [--seed 0]
        [--in-channels 8] [--channels 16] [--upsample-rates 4,2]
        [--resblock-kernel-sizes 3,5] [--dilations 1,3] [--batch 1] [--length 16]
        [--input input.json]

The architecture is HiFi-GAN's `Generator` with `ResBlock1` (jik876/hifi-gan, models.py),
at toy sizes, every convolution under `torch.nn.utils.weight_norm` (the hook API, dim 0):

    conv_pre   = weight_norm(Conv1d(in_channels, channels, 7, 1, padding=3))
    ups[i]     = weight_norm(ConvTranspose1d(ch_i, ch_i // 2, 2u, u, padding=u // 2))
                 for u in upsample_rates, ch_i = channels // 2**i   (HiFi-GAN: k = 2u,
                 padding (k - u) // 2, so an even u multiplies the length by u exactly;
                 an odd u gives u * L + 1)
    resblocks[i * K + j] = ResBlock1(ch_i // 2, resblock_kernel_sizes[j], dilations)
                 with convs1[n] = weight_norm(Conv1d(c, c, k, 1, dilation=d_n,
                 padding=(k * d_n - d_n) // 2)) and convs2[n] the same with dilation 1
    conv_post  = weight_norm(Conv1d(ch_last, 1, 7, 1, padding=3))

    forward(x):
        x = conv_pre(x)
        for i, up in enumerate(ups):
            x = F.leaky_relu(x, 0.1)
            x = up(x)
            xs = None
            for j in range(K):                     # K = len(resblock_kernel_sizes)
                xs = resblocks[i*K+j](x) if xs is None else xs + resblocks[i*K+j](x)
            x = xs / K
        x = F.leaky_relu(x)                        # HiFi-GAN's default slope 0.01 here
        return torch.tanh(conv_post(x))

    ResBlock1.forward(x):
        for c1, c2 in zip(convs1, convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
            x = xt + x
        return x

(HiFi-GAN's `init_weights`, which writes `normal_(0, 0.01)` into the hook's computed
`weight` attribute after `weight_norm` and so changes no parameter, is left out.)

After `torch.manual_seed(seed)` the model is built (PyTorch's default init), then every
`weight_g` is multiplied by `rand_like(g) + 0.5`, so that g differs from |v| as in a
trained checkpoint; the input is `torch.randn(batch, in_channels, length)` drawn next, or
read from `--input` (`{"input": {"shape": [...], "f32_bits": [...]}}`).

Writes `--out` (`torch.save(model.state_dict())`: keys `conv_pre.weight_g`,
`ups.0.weight_v`, `resblocks.0.convs1.1.weight_v`, ...) and `--io`, one JSON object:
`{"torch", "cpu_capability", "threads": 1, "seed", "config": {...}, "state_dict_keys",
"input", "output"}` with tensors as `{"shape": [int], "f32_bits": [u32, row-major]}`
(data/norm_helpers.py's `bits`). The forward runs in eval mode under `torch.no_grad()`, one
intra-op thread. With `--fold`, also `"removed_output"`: the output of a copy of the model
after `torch.nn.utils.remove_weight_norm` on every layer (PyTorch's own fold), and
`"removed_state_dict_keys"`.
"""
import argparse
import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import remove_weight_norm, weight_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_helpers import bits, machine, pin_threads, quiet_warnings, tensor_of, write_json  # noqa: E402

quiet_warnings()  # torch.nn.utils.weight_norm is deprecated upstream
LRELU_SLOPE = 0.1


def get_padding(kernel_size, dilation=1):
    return int((kernel_size * dilation - dilation) / 2)


class ResBlock1(nn.Module):
    def __init__(self, channels, kernel_size, dilation):
        super().__init__()
        self.convs1 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation
        ])
        self.convs2 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size, 1)))
            for _ in dilation
        ])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = c2(xt)
            x = xt + x
        return x

    def remove_weight_norm(self):
        for layer in self.convs1:
            remove_weight_norm(layer)
        for layer in self.convs2:
            remove_weight_norm(layer)


class Generator(nn.Module):
    def __init__(self, config):
        super().__init__()
        ch = config["channels"]
        self.num_kernels = len(config["resblock_kernel_sizes"])
        self.conv_pre = weight_norm(nn.Conv1d(config["in_channels"], ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        for i, u in enumerate(config["upsample_rates"]):
            self.ups.append(weight_norm(nn.ConvTranspose1d(ch // (2 ** i), ch // (2 ** (i + 1)), 2 * u, u, padding=u // 2)))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            c = ch // (2 ** (i + 1))
            for k in config["resblock_kernel_sizes"]:
                self.resblocks.append(ResBlock1(c, k, config["dilations"]))
        self.conv_post = weight_norm(nn.Conv1d(ch // (2 ** len(self.ups)), 1, 7, 1, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = up(x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        x = torch.tanh(x)
        return x

    def remove_weight_norm(self):
        for layer in self.ups:
            remove_weight_norm(layer)
        for block in self.resblocks:
            block.remove_weight_norm()
        remove_weight_norm(self.conv_pre)
        remove_weight_norm(self.conv_post)


def int_list(text):
    return [int(s) for s in text.split(",") if s.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="where to torch.save the state dict (.pt)")
    ap.add_argument("--io", required=True, help="where to write the JSON (config, input, output bits)")
    ap.add_argument("--fold", action="store_true", help="also report remove_weight_norm's output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-channels", type=int, default=8)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--upsample-rates", type=int_list, default=[4, 2])
    ap.add_argument("--resblock-kernel-sizes", type=int_list, default=[3, 5])
    ap.add_argument("--dilations", type=int_list, default=[1, 3])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--length", type=int, default=16)
    ap.add_argument("--input", help="JSON with an `input` tensor (shape, f32_bits) to run instead of randn")
    args = ap.parse_args()
    config = {
        "in_channels": args.in_channels,
        "channels": args.channels,
        "upsample_rates": args.upsample_rates,
        "resblock_kernel_sizes": args.resblock_kernel_sizes,
        "dilations": args.dilations,
    }
    if args.channels % (2 ** len(args.upsample_rates)) != 0:
        sys.exit(f"hifigan_block.py: --channels {args.channels} must be divisible by 2**{len(args.upsample_rates)}")

    pin_threads()
    torch.manual_seed(args.seed)
    model = Generator(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(torch.rand_like(p) + 0.5)
    model.eval()
    if args.input:
        with open(args.input) as f:
            x = tensor_of(json.load(f)["input"])
    else:
        x = torch.randn(args.batch, args.in_channels, args.length)
    with torch.no_grad():
        y = model(x)
    torch.save(model.state_dict(), args.out)
    result = {
        **machine(),
        "seed": args.seed,
        "config": config,
        "state_dict_keys": list(model.state_dict().keys()),
        "input": bits(x),
        "output": bits(y),
    }
    if args.fold:
        removed = copy.deepcopy(model)
        removed.remove_weight_norm()
        with torch.no_grad():
            result["removed_output"] = bits(removed(x))
        result["removed_state_dict_keys"] = list(removed.state_dict().keys())
    write_json(args.io, result)
    print(f"hifigan_block.py: {sum(p.numel() for p in model.parameters())} parameters, "
          f"input {list(x.shape)} -> output {list(y.shape)}, wrote {args.out} and {args.io}", file=sys.stderr)


if __name__ == "__main__":
    main()
