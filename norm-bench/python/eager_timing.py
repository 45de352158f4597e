"""PyTorch eager timings for `norm-bench report` (the pytorch_* columns of timing.csv).

    echo '{"threads":1,"warmup":20,"samples":200,"cases":[{"op":"weight_norm_forward","rows":64,"cols":64}]}' \
        | python norm-bench/python/eager_timing.py

Reads JSON requests from stdin (one per line, or one document spread over lines), each
`{"threads": int, "warmup": int, "samples": int, "cases": [{"op": str, "rows": int, "cols": int}, ...]}`,
and prints ONE JSON line per finished case to stdout:
`{"op", "rows", "cols", "threads", "warmup", "samples", "torch_version", "samples_ns": [int, ...]}`,
or the same keys with `"error": str` instead of `samples_ns` for a case it cannot time.
Progress (unless --quiet) and warnings go to stderr; nothing else is written to stdout.
It exits at the end of stdin; if torch cannot be imported it says so on stderr and exits 3.

Each case runs `warmup` untimed iterations, then `samples` iterations each timed alone
with time.perf_counter_ns; whatever an iteration allocates is freed before its clock
stops. The programs mirror norm-bench/src/report/cases.rs:

- weight_norm_forward: torch._weight_norm(v, g, 0), v = randn(rows, cols),
  g = norm_except_dim(v, 2, 0), no autograd.
- weight_norm_forward_backward: the same with v and g requiring grad, then
  weight.sum().backward(); v.grad and g.grad are set to None between samples (untimed).
- seed_loop_step: one iteration of data/seed_loop.py's first weight-norm loop:
  step(torch.randn(10, 2) * random.random() * 10) on weight_norm(nn.Linear(2, 3)) with Adam(lr=2e-3).

Every case starts with torch.manual_seed(0) (and random.seed(0)).
"""
import argparse
import json
import random
import sys
import time
import warnings

PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr  # anything printed by accident must not corrupt the protocol
CASE_SEED = 0


def log(message):
    print(f"eager_timing.py: {message}", file=sys.stderr, flush=True)


try:
    import torch
    import torch.nn as nn
    import torch.optim as optim
except ImportError as e:  # the caller leaves the pytorch columns empty
    log(f"cannot import torch ({e}); no PyTorch timings")
    sys.exit(3)

warnings.filterwarnings("ignore", category=FutureWarning)  # weight_norm is deprecated upstream


def time_iterations(warmup, samples, body, between=None):
    """`warmup` untimed then `samples` timed calls of body(); durations in ns."""
    for _ in range(warmup):
        if between is not None:
            between()
        body()
    clock = time.perf_counter_ns
    nanos = []
    for _ in range(samples):
        if between is not None:
            between()
        start = clock()
        body()
        nanos.append(clock() - start)
    return nanos


def weight_norm_leaves(rows, cols, requires_grad):
    v = torch.randn(rows, cols)
    g = torch.norm_except_dim(v, 2, 0)
    return v.requires_grad_(requires_grad), g.requires_grad_(requires_grad)


def weight_norm_forward(rows, cols, warmup, samples):
    v, g = weight_norm_leaves(rows, cols, False)

    def body():
        torch._weight_norm(v, g, 0)

    return time_iterations(warmup, samples, body)


def weight_norm_forward_backward(rows, cols, warmup, samples):
    v, g = weight_norm_leaves(rows, cols, True)

    def between():
        v.grad = None
        g.grad = None

    def body():
        weight = torch._weight_norm(v, g, 0)
        weight.sum().backward()

    return time_iterations(warmup, samples, body, between)


def seed_loop_step(rows, cols, warmup, samples):
    if (rows, cols) != (3, 2):
        raise ValueError(f"seed_loop_step is a 3x2 weight, got {rows}x{cols}")
    random.seed(CASE_SEED)
    # data/seed_loop.py's weight-norm program (run(), example "weight-norm").
    linear_layer = nn.Linear(2, 3)
    linear_layer.weight.data = torch.tensor([[0, -2e-2], [0.3, 1.0], [1e-2, 0]], dtype=torch.float32)
    linear_layer.bias.data = torch.tensor([-0.3, 0, -2e-2], dtype=torch.float32)
    linear_layer = torch.nn.utils.weight_norm(linear_layer, name="weight")
    optimizer = optim.Adam(linear_layer.parameters(), lr=2e-3)

    def step(x):
        output = linear_layer(x)
        loss = 1 - output.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def body():
        step(torch.randn(10, 2) * random.random() * 10)

    return time_iterations(warmup, samples, body)


OPS = {
    "weight_norm_forward": weight_norm_forward,
    "weight_norm_forward_backward": weight_norm_forward_backward,
    "seed_loop_step": seed_loop_step,
}


def run_request(request, quiet):
    threads, warmup, samples = int(request["threads"]), int(request["warmup"]), int(request["samples"])
    if threads < 1 or warmup < 0 or samples < 1:
        raise ValueError(f"need threads >= 1, warmup >= 0, samples >= 1; got {threads}, {warmup}, {samples}")
    torch.set_num_threads(threads)
    for case in request["cases"]:
        op, rows, cols = case["op"], int(case["rows"]), int(case["cols"])
        answer = {"op": op, "rows": rows, "cols": cols, "threads": torch.get_num_threads(), "warmup": warmup,
                  "samples": samples, "torch_version": torch.__version__}
        try:
            if op not in OPS:
                raise ValueError(f"unknown op {op!r} (known: {', '.join(OPS)})")
            torch.manual_seed(CASE_SEED)
            answer["samples_ns"] = OPS[op](rows, cols, warmup, samples)
            if not quiet:
                median = sorted(answer["samples_ns"])[samples // 2] / 1000
                log(f"{op} {rows}x{cols}: median {median:.1f} us")
        except Exception as e:  # noqa: BLE001 - reported to the caller, the next case may work
            answer["error"] = f"{type(e).__name__}: {e}"
            log(f"{op} {rows}x{cols} failed: {answer['error']}")
        print(json.dumps(answer, separators=(",", ":")), file=PROTOCOL_OUT, flush=True)


def requests(stream):
    """The JSON documents on `stream`, one per line or spread over several lines."""
    decoder = json.JSONDecoder()
    pending = ""
    for line in iter(stream.readline, ""):
        pending += line
        text = pending.strip()
        if not text:
            pending = ""
            continue
        try:
            document, end = decoder.raw_decode(text)
        except json.JSONDecodeError:
            continue  # incomplete: read more
        if text[end:].strip():
            raise ValueError(f"unexpected text after a request: {text[end:].strip()[:80]!r}")
        pending = ""
        yield document
    if pending.strip():
        raise ValueError(f"incomplete request at end of input: {pending.strip()[:80]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="no per-case progress on stderr")
    args = parser.parse_args()
    try:
        for request in requests(sys.stdin):
            run_request(request, args.quiet)
    except (KeyboardInterrupt, BrokenPipeError):  # the caller was interrupted or went away
        sys.exit(130)


if __name__ == "__main__":
    main()
