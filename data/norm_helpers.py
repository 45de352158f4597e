"""What the Python programs of data/ and norm-tch/tests/ share: float32 tensors as bit
patterns and back, the one-intra-op-thread setup, the machine a run was made on, and JSON
out (compact, atomic files).

The scripts of data/ import it next to themselves; the ones under norm-tch/tests/ put
data/ on sys.path first:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
    import norm_helpers

A tensor as bits is `{"shape": [int], "f32_bits": [u32, row-major]}`, the form
norm-bench's `TensorBits` and norm-test-support's `Bits` read (the checkpoint and layer-init
scripts name the list `"bits"` instead, the key their Rust tests read).
"""
import json
import os
import tempfile
import warnings

import torch

THREADS = 1
"""Intra-op threads for every run whose bits are compared: ATen's reductions split work by
thread, so bits are only reproducible at a fixed count (and the Rust side pins 1 too)."""


def pin_threads(threads=THREADS):
    """`torch.set_num_threads(threads)`: one intra-op thread unless told otherwise."""
    torch.set_num_threads(threads)


def quiet_warnings(category=Warning):
    """Ignores warnings of `category` (all by default; FutureWarning for the deprecated
    `torch.nn.utils.weight_norm` alone), so stderr carries only what the script says."""
    warnings.filterwarnings("ignore", category=category)


def f32_bit_list(t):
    """The IEEE-754 bit patterns of a contiguous float32 tensor, row-major, as unsigned
    32-bit integers."""
    return [b & 0xFFFFFFFF for b in t.view(torch.int32).reshape(-1).tolist()]


def bits(t, key="f32_bits"):
    """A float32 tensor (detached, made contiguous, on the CPU) as `{"shape", key}` with its
    bit patterns; any other dtype is an error, never a silent conversion."""
    t = t.detach().contiguous().cpu()
    assert t.dtype == torch.float32
    return {"shape": list(t.shape), key: f32_bit_list(t)}


def from_bits(shape, values):
    """The float32 tensor of `shape` whose row-major bit patterns are `values` (u32)."""
    return torch.tensor(values, dtype=torch.int64).to(torch.int32).view(torch.float32).reshape(shape)


def tensor_of(b, key="f32_bits"):
    """The float32 tensor of `{"shape", key}` as `bits` writes it, bit for bit."""
    return from_bits(b["shape"], b[key])


def state_dict_bits(state_dict):
    """`{name: bits(tensor)}` for every entry of a state dict, in its order."""
    return {k: bits(v) for k, v in state_dict.items()}


def machine():
    """Where bits were made: `{"torch": version, "cpu_capability": ATen's, "threads": intra-op
    threads now}` (bits agree only between equal torch versions and CPU capabilities)."""
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def dumps(obj, sort_keys=False):
    """`obj` as one line of compact JSON (no spaces after separators), newline-terminated."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys) + "\n"


def print_json(obj):
    """Prints `obj` as one line of compact JSON on stdout and flushes it."""
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def write_atomic(path, text):
    """Writes `text` to `path` through a temporary file in the same folder and a rename, so
    readers see the old file or the new one, never half of one (mode as `open` would make)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 -> what open() would have made
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj):
    """`write_atomic(path, dumps(obj))`: compact JSON and a newline, atomically."""
    write_atomic(path, dumps(obj))
