"""The PyTorch side of `norm-bench parity`: runs a parity spec in real PyTorch, prints norm-bench's JSON.

    .venv/bin/python data/parity.py data/parity_spec.json                 # JSON on stdout
    .venv/bin/python data/parity.py data/parity_spec.json --out out.json  # written atomically

The spec format, the output format, the error-case extension and the exact semantics are
documented in docs/parity.md; this module is their reference implementation. In short, for
every case: `torch.manual_seed(seed)`; build the layer (train mode); apply weight_norm or
spectral_norm through the hook or the parametrization API with exactly the arguments the
spec gives; `layer.train(mode == "train")`; optionally `torch.optim.Adam` or
`torch.optim.AdamW` (with `foreach`/`fused`/`maximize` as given); then `steps`
times: `x = randn(input_shape)` (Embedding: `randint(0, num_embeddings, input_shape)`),
`loss = layer(x).sum()`, backward (+ Adam step), and record `out`, `loss`, every
`state_dict()` entry and `grad.<name>` of every parameter whose `.grad` is set.

A case whose construction or one of whose steps raises is recorded as
`{"name", "error": {"type", "message"}}` (no "steps") and the run goes on. A malformed spec
(wrong types, unknown keys, ...) is rejected up front: a message naming the case (index and
name) and the field on stderr, exit status 2; so is a case whose `device` ("cuda") this
machine does not have. The layer is built on the CPU (its init draws from the CPU generator,
as `Model().to(device)` does and as norm's layers do) and moved to the case's device; the
normalization is registered there (spectral norm's u, v drawn by that device's generator) and
the inputs are drawn there. One progress line per case goes to stderr.
"""
import argparse
import json
import math
import os
import sys
import time
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_helpers import THREADS, bits, dumps, pin_threads, state_dict_bits, write_atomic  # noqa: E402

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

CONV_DIMS = {
    "conv1d": 1, "conv2d": 2, "conv3d": 3,
    "conv_transpose1d": 1, "conv_transpose2d": 2, "conv_transpose3d": 3,
}
CONV_CLASSES = {
    "conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d,
    "conv_transpose1d": nn.ConvTranspose1d, "conv_transpose2d": nn.ConvTranspose2d,
    "conv_transpose3d": nn.ConvTranspose3d,
}
LAYER_KINDS = ["linear", *CONV_DIMS, "embedding"]
# The most steps a case may ask for (norm-bench parity refuses more too).
MAX_STEPS = 100_000
CASE_KEYS = {"name", "seed", "layer", "norm", "mode", "input_shape", "steps", "optimizer", "device"}
CASE_REQUIRED = ["name", "seed", "layer", "norm", "mode", "input_shape", "steps"]
OPTIMIZER_KEYS = {"kind", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "fused"}
DEVICES = ("cpu", "cuda")
# A case's size budget (norm-bench's parity/budget.rs has the same rule; docs/parity.md).
MAX_INPUT_DIMS = 16
MAX_SPEC_BYTES = 64 << 20
MAX_POWER_ITERATIONS = 10_000
MAX_ELEMENTS = 2**24   # the weight, the input, the output: each
MAX_RECORDED = 2**24   # (output + weight elements) x max(steps, 1)
MAX_WORK = 2**32       # (multiply-adds of one forward + weight elements x max(n_power_iterations, 1)) x max(steps, 1)


class SpecError(Exception):
    """A malformed spec; the message names the case and the field."""


class DeviceError(Exception):
    """A case asks for a device this machine does not have; the message names the case."""


# ---------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name} is not allowed")


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r} in a JSON object")
        out[k] = v
    return out


def parse_spec_text(text):
    """JSON text -> Python objects. Integers stay exact Python ints (so seeds up to 2**63-1
    survive); NaN/Infinity literals and duplicate keys are rejected."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise SpecError(f"spec is not valid JSON: {e}") from None


class _Ctx:
    def __init__(self, index, name):
        self.where = f"case {index}" + (f" ({json.dumps(name)})" if isinstance(name, str) else " (no valid name)")

    def fail(self, field, msg):
        raise SpecError(f"{self.where}: field {field!r}: {msg}")


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, int):
        return "an int"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _int(ctx, field, v, lo=INT64_MIN, hi=INT64_MAX):
    if isinstance(v, bool) or not isinstance(v, int):
        ctx.fail(field, f"expected an integer, got {_kind(v)} ({json.dumps(v)})")
    if not lo <= v <= hi:
        ctx.fail(field, f"expected an integer in [{lo}, {hi}], got {v}")
    return v


def _float(ctx, field, v):
    # A JSON number written without a fraction (0, 1) is still a number: accepted and
    # converted to a Python float before it reaches PyTorch. Bools are not numbers.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        ctx.fail(field, f"expected a number, got {_kind(v)} ({json.dumps(v)})")
    f = float(v)
    if not math.isfinite(f):
        ctx.fail(field, f"expected a finite number, got {v}")
    return f


def _bool(ctx, field, v):
    if not isinstance(v, bool):
        ctx.fail(field, f"expected true or false, got {_kind(v)} ({json.dumps(v)})")
    return v


def _obj(ctx, field, v, allowed, required):
    if not isinstance(v, dict):
        ctx.fail(field, f"expected an object, got {_kind(v)}")
    for k in v:
        if k not in allowed:
            ctx.fail(f"{field}.{k}" if field else k, f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for k in required:
        if k not in v:
            ctx.fail(f"{field}.{k}" if field else k, "missing")
    return v


def _int_list(ctx, field, v, length=None, lo=INT64_MIN):
    if not isinstance(v, list):
        ctx.fail(field, f"expected a list of integers, got {_kind(v)}")
    if length is not None and len(v) != length:
        ctx.fail(field, f"expected {length} entries, got {len(v)}")
    return [_int(ctx, f"{field}[{i}]", x, lo=lo) for i, x in enumerate(v)]


def _validate_layer(ctx, v):
    if not isinstance(v, dict):
        ctx.fail("layer", f"expected an object, got {_kind(v)}")
    kind = v.get("kind")
    if kind not in LAYER_KINDS:
        ctx.fail("layer.kind", f"expected one of {', '.join(LAYER_KINDS)}, got {json.dumps(kind)}")
    if kind == "linear":
        keys = ["kind", "in_features", "out_features", "bias"]
        _obj(ctx, "layer", v, set(keys), keys)
        return {"kind": kind,
                "in_features": _int(ctx, "layer.in_features", v["in_features"], lo=0),
                "out_features": _int(ctx, "layer.out_features", v["out_features"], lo=0),
                "bias": _bool(ctx, "layer.bias", v["bias"])}
    if kind == "embedding":
        keys = ["kind", "num_embeddings", "embedding_dim"]
        _obj(ctx, "layer", v, set(keys), keys)
        return {"kind": kind,
                "num_embeddings": _int(ctx, "layer.num_embeddings", v["num_embeddings"], lo=0),
                "embedding_dim": _int(ctx, "layer.embedding_dim", v["embedding_dim"], lo=0)}
    d = CONV_DIMS[kind]
    required = ["kind", "in_channels", "out_channels", "kernel_size", "bias"]
    _obj(ctx, "layer", v, set(required) | {"stride", "padding"}, required)
    out = {"kind": kind,
           "in_channels": _int(ctx, "layer.in_channels", v["in_channels"], lo=0),
           "out_channels": _int(ctx, "layer.out_channels", v["out_channels"], lo=0)}
    for key in ["kernel_size", "stride", "padding"]:
        if key in v:
            if isinstance(v[key], list) and len(v[key]) != d:
                ctx.fail(f"layer.{key}", f"{kind} has {d} spatial dim{'s' if d > 1 else ''}: expected {d} "
                         f"entr{'ies' if d > 1 else 'y'}, got {len(v[key])}")
            out[key] = _int_list(ctx, f"layer.{key}", v[key], length=d, lo=0)
    out["bias"] = _bool(ctx, "layer.bias", v["bias"])
    return out


def _validate_norm(ctx, v):
    if not isinstance(v, dict):
        ctx.fail("norm", f"expected an object, got {_kind(v)}")
    kind = v.get("kind")
    if kind not in ("weight_norm", "spectral_norm"):
        ctx.fail("norm.kind", f"expected \"weight_norm\" or \"spectral_norm\", got {json.dumps(kind)}")
    allowed = {"kind", "api", "dim"}
    if kind == "spectral_norm":
        allowed |= {"n_power_iterations", "eps"}
    _obj(ctx, "norm", v, allowed, ["kind", "api"])
    if v["api"] not in ("hooks", "parametrizations"):
        ctx.fail("norm.api", f"expected \"hooks\" or \"parametrizations\", got {json.dumps(v['api'])}")
    out = {"kind": kind, "api": v["api"]}
    if "dim" in v:  # present-and-null (dim=None) differs from absent (the default)
        out["dim"] = None if v["dim"] is None else _int(ctx, "norm.dim", v["dim"])
    if "n_power_iterations" in v:
        out["n_power_iterations"] = _int(ctx, "norm.n_power_iterations", v["n_power_iterations"])
    if "eps" in v:
        out["eps"] = _float(ctx, "norm.eps", v["eps"])
    return out


def _tri(ctx, field, v):
    if v is not None and not isinstance(v, bool):
        ctx.fail(field, f"expected true, false or null, got {_kind(v)} ({json.dumps(v)})")
    return v


def _validate_optimizer(ctx, v):
    if v is None:
        return None
    _obj(ctx, "optimizer", v, OPTIMIZER_KEYS, ["kind"])
    if v["kind"] not in ("adam", "adamw"):
        ctx.fail("optimizer.kind", f"expected \"adam\" or \"adamw\", got {json.dumps(v['kind'])}")
    out = {"kind": v["kind"]}
    for key in ["lr", "eps", "weight_decay"]:
        if key in v:
            out[key] = _float(ctx, f"optimizer.{key}", v[key])
    if "betas" in v:
        b = v["betas"]
        if not isinstance(b, list) or len(b) != 2:
            ctx.fail("optimizer.betas", f"expected a list of 2 numbers, got {json.dumps(b)}")
        out["betas"] = [_float(ctx, f"optimizer.betas[{i}]", x) for i, x in enumerate(b)]
    for key in ["amsgrad", "maximize"]:
        if key in v:
            out[key] = _bool(ctx, f"optimizer.{key}", v[key])
    for key in ["foreach", "fused"]:  # omitted and null both mean None, PyTorch's default
        out[key] = _tri(ctx, f"optimizer.{key}", v.get(key))
    return out


def _prod(dims):
    out = 1
    for d in dims:
        out *= max(d, 0)
    return out


def _sizes(case):
    """(weight elements, input elements, output elements, multiply-adds of one forward)."""
    layer, shape = case["layer"], case["input_shape"]
    inp, rank = _prod(shape), len(shape)
    kind = layer["kind"]
    if kind == "linear":
        out = (_prod(shape[:-1]) if rank else 0) * layer["out_features"]
        return layer["in_features"] * layer["out_features"], inp, out, out * layer["in_features"]
    if kind == "embedding":
        out = inp * layer["embedding_dim"]
        return layer["num_embeddings"] * layer["embedding_dim"], inp, out, out
    d = CONV_DIMS[kind]
    k = layer["kernel_size"]
    stride, padding = layer.get("stride", [1] * d), layer.get("padding", [0] * d)
    weight = layer["in_channels"] * layer["out_channels"] * _prod(k)
    if rank < d + 1:
        return weight, inp, 0, 0
    out = _prod(shape[:rank - d - 1]) * layer["out_channels"]
    for n, kk, st, p in zip(shape[rank - d:], k, stride, padding):
        st = max(st, 1)
        if kind.startswith("conv_transpose"):
            o = (n - 1) * st - 2 * p + kk
        else:
            span = n + 2 * p - kk
            o = 0 if span < 0 else span // st + 1
        out *= max(o, 0)
    return weight, inp, out, out * layer["in_channels"] * _prod(k)


def check_budget(ctx, case):
    """The size budget of a case (docs/parity.md), before anything is built."""
    if len(case["input_shape"]) > MAX_INPUT_DIMS:
        ctx.fail("input_shape", f"at most {MAX_INPUT_DIMS} dims, got {len(case['input_shape'])}")
    iterations = case["norm"].get("n_power_iterations", 1)
    if iterations > MAX_POWER_ITERATIONS:
        ctx.fail("norm.n_power_iterations", f"at most {MAX_POWER_ITERATIONS}, got {iterations}")
    weight, inp, out, macs = _sizes(case)
    for field, what, n in [("layer", "the weight", weight), ("input_shape", "the input", inp),
                           ("input_shape", "the output", out)]:
        if n > MAX_ELEMENTS:
            ctx.fail(field, f"{what} would have {n} elements; the budget is {MAX_ELEMENTS} per tensor")
    steps = max(case["steps"], 1)
    recorded = (out + weight) * steps
    if recorded > MAX_RECORDED:
        ctx.fail("steps", f"(output + weight elements) x steps = {recorded} values to record; "
                 f"the budget is {MAX_RECORDED}")
    work = (macs + weight * max(iterations, 1)) * steps
    if work > MAX_WORK:
        ctx.fail("steps", f"about {work} multiply-adds over the steps; the budget is {MAX_WORK}")


def validate_spec(obj):
    """Checks a parsed spec strictly; returns the list of normalized cases (floats as
    floats, optional keys present only when given). Raises SpecError."""
    if not isinstance(obj, dict):
        raise SpecError(f"spec: expected a top-level object {{\"cases\": [...]}}, got {_kind(obj)}")
    for k in obj:
        if k != "cases":
            raise SpecError(f"spec: unknown top-level key {k!r} (allowed: cases)")
    if "cases" not in obj:
        raise SpecError("spec: missing top-level key 'cases'")
    if not isinstance(obj["cases"], list):
        raise SpecError(f"spec: 'cases' must be a list, got {_kind(obj['cases'])}")
    cases, seen = [], {}
    for i, c in enumerate(obj["cases"]):
        ctx = _Ctx(i, c.get("name") if isinstance(c, dict) else None)
        if not isinstance(c, dict):
            raise SpecError(f"{ctx.where}: expected an object, got {_kind(c)}")
        _obj(ctx, "", c, CASE_KEYS, CASE_REQUIRED)
        name = c["name"]
        if not isinstance(name, str) or not name:
            ctx.fail("name", f"expected a non-empty string, got {json.dumps(name)}")
        if name in seen:
            ctx.fail("name", f"duplicate name (also case {seen[name]})")
        seen[name] = i
        mode = c["mode"]
        if mode not in ("train", "eval"):
            ctx.fail("mode", f"expected \"train\" or \"eval\", got {json.dumps(mode)}")
        device = c.get("device", "cpu")
        if device not in DEVICES:
            ctx.fail("device", f"expected \"cpu\" or \"cuda\", got {json.dumps(device)}")
        cases.append({
            "name": name,
            "seed": _int(ctx, "seed", c["seed"], lo=0, hi=2**63 - 1),
            "layer": _validate_layer(ctx, c["layer"]),
            "norm": _validate_norm(ctx, c["norm"]),
            "mode": mode,
            "input_shape": _int_list(ctx, "input_shape", c["input_shape"], lo=0),
            "steps": _int(ctx, "steps", c["steps"], lo=0, hi=MAX_STEPS),
            "optimizer": _validate_optimizer(ctx, c.get("optimizer")),
            "device": device,
        })
        check_budget(ctx, cases[-1])
    return cases


def check_devices(cases):
    """Raises DeviceError for the first case whose device this machine lacks."""
    for i, case in enumerate(cases):
        if case["device"] == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"case {i} ({json.dumps(case['name'])}): field 'device': device \"cuda\" is not "
                              "available on this machine (torch.cuda.is_available() is False)")


def load_spec(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(f"cannot read spec {path}: {e.strerror}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"spec {path} is larger than the limit of {MAX_SPEC_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"spec {path} is not UTF-8: {e}") from None
    return validate_spec(parse_spec_text(text))


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------

def build_layer(layer, device="cpu"):
    """The layer built on the CPU (its init draws from the CPU generator, as `Model().to(device)`
    and norm's layers draw them) and moved to `device`."""
    kind = layer["kind"]
    if kind == "linear":
        built = nn.Linear(layer["in_features"], layer["out_features"], bias=layer["bias"])
    elif kind == "embedding":
        built = nn.Embedding(layer["num_embeddings"], layer["embedding_dim"])
    else:
        kwargs = {k: tuple(layer[k]) for k in ("stride", "padding") if k in layer}
        built = CONV_CLASSES[kind](layer["in_channels"], layer["out_channels"], tuple(layer["kernel_size"]),
                                   bias=layer["bias"], **kwargs)
    return built.to(device)


def apply_norm(layer, norm):
    """Exactly the arguments the spec gives; an omitted key is not passed (PyTorch's default)."""
    kwargs = {k: norm[k] for k in ("dim", "n_power_iterations", "eps") if k in norm}
    if norm["kind"] == "weight_norm":
        fn = torch.nn.utils.weight_norm if norm["api"] == "hooks" else torch.nn.utils.parametrizations.weight_norm
    else:
        fn = torch.nn.utils.spectral_norm if norm["api"] == "hooks" else torch.nn.utils.parametrizations.spectral_norm
    fn(layer, **kwargs)


def make_optimizer(layer, opt):
    if opt is None:
        return None
    kwargs = {k: opt[k] for k in ("lr", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "fused") if k in opt}
    if "betas" in opt:
        kwargs["betas"] = tuple(opt["betas"])
    cls = torch.optim.AdamW if opt["kind"] == "adamw" else torch.optim.Adam
    return cls(layer.parameters(), **kwargs)


def error_type(e):
    """The nearest built-in exception class (torch.OutOfMemoryError -> RuntimeError, ...)."""
    for cls in type(e).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(e).__name__


def error_record(name, e):
    return {"name": name, "error": {"type": error_type(e), "message": str(e)}}


def record(layer, out, loss):
    tensors = {"out": bits(out), "loss": bits(loss)}
    tensors.update(state_dict_bits(layer.state_dict()))
    for k, p in layer.named_parameters():
        if p.grad is not None:
            tensors["grad." + k] = bits(p.grad)
    return tensors


def run_case(case):
    """One case -> its output object, and (stage, exception) when it raised."""
    name = case["name"]
    torch.manual_seed(case["seed"])
    try:
        layer = build_layer(case["layer"], case["device"])
        apply_norm(layer, case["norm"])
        layer.train(case["mode"] == "train")
        opt = make_optimizer(layer, case["optimizer"])
    except Exception as e:  # noqa: BLE001 - PyTorch's error is the expected result
        return error_record(name, e), ("construction", e)
    embedding = case["layer"]["kind"] == "embedding"
    steps = []
    for s in range(1, case["steps"] + 1):
        try:
            if embedding:
                x = torch.randint(0, case["layer"]["num_embeddings"], case["input_shape"], device=case["device"])
            else:
                x = torch.randn(case["input_shape"], device=case["device"])
            out = layer(x)
            loss = out.sum()
            if opt is not None:
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                layer.zero_grad(set_to_none=True)
                loss.backward()
        except Exception as e:  # noqa: BLE001
            return error_record(name, e), (f"step {s}", e)
        steps.append({"step": s, "tensors": record(layer, out, loss)})
    return {"name": name, "steps": steps}, None


def run_spec(cases, progress=None):
    pin_threads(THREADS)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices etc. would interleave with progress
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            result, err = run_case(case)
            results.append(result)
            if progress is not None:
                ms = (time.perf_counter() - t0) * 1e3
                if err is None:
                    what = f"ok, {case['steps']} step{'s' if case['steps'] != 1 else ''}"
                else:
                    first_line = str(err[1]).splitlines()[0] if str(err[1]) else ""
                    what = f"error at {err[0]}: {error_type(err[1])}: {first_line}"
                print(f"[{i + 1}/{len(cases)}] {case['name']}: {what} ({ms:.1f} ms)", file=progress, flush=True)
    return {"torch": str(torch.__version__), "cases": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="parity spec (JSON), see docs/parity.md")
    parser.add_argument("--out", metavar="FILE", help="write the output JSON here (atomically) instead of stdout")
    args = parser.parse_args(argv)
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        print(f"parity.py: --out {args.out}: no such directory", file=sys.stderr)
        return 2
    try:
        cases = load_spec(args.spec)
    except SpecError as e:
        print(f"parity.py: malformed spec {args.spec}: {e}", file=sys.stderr)
        return 2
    try:
        check_devices(cases)
    except DeviceError as e:
        print(f"parity.py: {args.spec}: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = run_spec(cases, progress=sys.stderr)
    errors = sum(1 for c in result["cases"] if "error" in c)
    text = dumps(result)
    if args.out:
        write_atomic(args.out, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    print(f"parity.py: {len(cases)} cases ({errors} PyTorch errors) in {time.perf_counter() - t0:.2f} s, "
          f"torch {torch.__version__}{', wrote ' + args.out if args.out else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
