"""The PyTorch eager side of `norm-bench report`: timings, σ estimates and loss curves.

    printf '%s\n' '{"kind":"open","threads":1,"sampling":{"warmup_min":1,"warmup_ms":50,"min_samples":3,"max_samples":200,"budget_ms":400,"min_sample_us":1000},"case":{"op":"weight_norm_forward","rows":64,"cols":64,"dtype":"f32","device":"cpu","n_power_iterations":null}}' \
        '{"kind":"burst","rewarm_us":5000,"min_samples":1,"max_samples":200,"budget_us":25000}' '{"kind":"close"}' \
        | python norm-bench/python/eager_timing.py

Reads JSON requests from stdin (one per line, or one document spread over lines) and
prints ONE JSON line per request to stdout, with the request's "kind":

- {"kind":"env","threads":N} -> torch/Python versions, CPU capability, CUDA device, ...
- {"kind":"open","threads":N,"sampling":{...},"case":{...},"pytorch_op":NAME}
  -> {"kind":"open","case":{...},"threads":N,"warmup":W,"iterations_per_sample":B}: the case
  set up by the function op_<NAME> below ("pytorch_op" defaults to the case's op) and warmed
  up under one round's rule; it stays open (one at a time) for bursts
- {"kind":"burst","threads":N,"rewarm_us":R,"min_samples":A,"max_samples":Z,"budget_us":U}
  -> {"kind":"burst","samples_ns":[...],"elapsed_ns":E}: one burst of the open case (each
  sample: B iterations back to back, their total ns / B rounded half up; E the burst's wall
  clock, its re-warm-up included)
- {"kind":"close","threads":N} -> {"kind":"close","warmup":W}: the open case dropped; W its untimed
  iterations, the warm-up's and the bursts' re-warm-ups (no "warmup" when no case was open)
- {"kind":"sigma","threads":N,"matrix":"random"|"ill_conditioned","rows":R,"cols":C,"seed":S,"spectrum":[...]|null,"iterations":[k,...]}
  -> {"kind":"sigma",...,"sigma":[...]}: the hook API's σ = dot(u, W v) after k iterations from fresh u, v
- {"kind":"loss","threads":N,"run":"seed_weight_norm"|"spectral_norm_linear64","steps":K} -> {"kind":"loss",...,"losses":[...]}
- {"kind":"model_losses","threads":N,"case":{...},"steps":K} -> {"kind":"model_losses",...,"loss_bits":[...]}: the
  float32 bits of K training steps' losses of a whole-model case (hifigan_*, sn_discriminator_*), for the bit check

An answer carries "error": "Type: message" instead of its result when PyTorch raises
(e.g. an op without a kernel for a dtype); the script goes on with the next request.
Progress (unless --quiet) and warnings go to stderr; nothing else is written to stdout.
It exits at the end of stdin; if torch cannot be imported it says so on stderr and exits 3.

This script keeps no list of ops. The Rust side's table of ops
(norm-bench/src/report/ops.rs) says, per op, which program times its PyTorch side and
sends that name as the request's "pytorch_op" (weight_norm_forward_out shares
weight_norm_forward's program, seed_loop_step_cpp shares seed_loop_step's); the program
is the function named op_<that name> here, which sets the case up and returns its Body. A
new op is a row there, its Rust body in norm-bench/src/report/rust_side.rs, and an
op_<name> function here.

The programs mirror norm-bench/src/report/rust_side.rs and convergence.rs op for op; the
sampling rule mirrors norm-bench/src/report/sampling.rs. docs/reports.md describes both.
"""
import argparse
import json
import platform
import random
import sys
import time
import warnings

PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr  # anything printed by accident must not corrupt the protocol
CASE_SEED = 0
TRAIN_STEP_BATCH = 32
TRAIN_STEP_LR = 1e-3
SPECTRAL_EPS = 1e-12


def log(message):
    print(f"eager_timing.py: {message}", file=sys.stderr, flush=True)


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.nn.utils.parametrizations import _SpectralNorm
    from torch.nn.utils.spectral_norm import SpectralNorm
except ImportError as e:  # the caller leaves the pytorch columns empty
    log(f"cannot import torch ({e}); no PyTorch side")
    sys.exit(3)

warnings.filterwarnings("ignore", category=FutureWarning)  # weight_norm is deprecated upstream
warnings.filterwarnings("ignore", category=UserWarning)

DTYPES = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16, "f16": torch.float16}


def device_of(name):
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        return torch.device("cuda", 0)
    raise ValueError(f"unknown device {name!r}")


def synchronizer(device):
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


WARMUP_FACTOR = 100  # sampling.rs: warm-up runs up to 100 x max_samples iterations (within warmup_ms)
MAX_ITERATIONS_PER_SAMPLE = 10_000
DEFAULT_MIN_SAMPLE_US = 1000


def iterations_per_sample(min_sample_us, warmup, warmup_elapsed_ns, has_between):
    """Sampling::iterations_per_sample: clamp(ceil(min_sample_ns * warmup / warmup_ns), 1, 10000), or 1."""
    if min_sample_us == 0 or warmup == 0 or has_between:
        return 1
    if warmup_elapsed_ns <= 0:
        return MAX_ITERATIONS_PER_SAMPLE
    wanted = -(-(min_sample_us * 1000 * warmup) // warmup_elapsed_ns)  # ceil, in integers
    return max(1, min(wanted, MAX_ITERATIONS_PER_SAMPLE))


class Body:
    """sampling.rs's Body: a case set up, owning its state: `iteration`, and `between` (untimed,
    before every iteration) or None, on `device`."""

    def __init__(self, device, iteration, between=None):
        self.sync = synchronizer(device)
        self.iteration = iteration
        self.between = between

    def untimed(self):
        if self.between is not None:
            self.between()
        self.iteration()
        self.sync()


class Session:
    """sampling.rs's Session: a Body warmed up under one round's rule, taking samples in bursts."""

    def __init__(self, body, sampling):
        clock = time.perf_counter_ns
        warmup_min, warmup_ns = int(sampling["warmup_min"]), int(sampling["warmup_ms"]) * 1_000_000
        max_samples = int(sampling["max_samples"])
        min_sample_us = int(sampling.get("min_sample_us", DEFAULT_MIN_SAMPLE_US))
        start, warmup = clock(), 0
        while warmup < warmup_min or (clock() - start < warmup_ns and warmup < WARMUP_FACTOR * max_samples):
            body.untimed()
            warmup += 1
        elapsed = clock() - start
        self.body = body
        self.warmup = warmup
        self.batch = iterations_per_sample(min_sample_us, warmup, elapsed, body.between is not None)
        # no re-warm-up when one warm-up iteration took burst_ms or longer (Session::warm_up)
        self.rewarms = warmup == 0 or elapsed < warmup * int(sampling.get("burst_ms", 0)) * 1_000_000

    def burst(self, rule):
        """sampling.rs's Session::burst: a re-warm-up (untimed iterations while none has run or they
        lasted less than rewarm_us; none if it is 0 or the case's iterations are long), then
        samples by Burst::keep_sampling:
        ([per-iteration ns of each sample], elapsed ns)."""
        clock, body, batch = time.perf_counter_ns, self.body, self.batch
        min_samples, max_samples = int(rule["min_samples"]), int(rule["max_samples"])
        budget_ns = int(rule["budget_us"]) * 1000
        rewarm_ns = int(rule["rewarm_us"]) * 1000
        start = clock()
        if rewarm_ns > 0 and self.rewarms:
            done = 0
            while done == 0 or clock() - start < rewarm_ns:
                body.untimed()
                done += 1
            self.warmup += done
        nanos = []
        while len(nanos) < min_samples or (clock() - start < budget_ns and len(nanos) < max_samples):
            if body.between is not None:
                body.between()
            body.sync()
            t0 = clock()
            for _ in range(batch):
                body.iteration()
            body.sync()
            nanos.append((clock() - t0 + batch // 2) // batch)
        return nanos, clock() - start


SESSION = None  # the open case's Session (an "open" request replaces it, "close" drops it)


def randn(case, rows, cols):
    """randn drawn as float32 on the CPU, then converted to the case's dtype and device."""
    return torch.randn(rows, cols).to(dtype=DTYPES[case["dtype"]], device=device_of(case["device"]))


def spectral_linear(case, k):
    """spectral_norm(nn.Linear(cols, rows).to(dtype, device), n_power_iterations=k) and its hook."""
    rows, cols = case["rows"], case["cols"]
    m = nn.Linear(cols, rows).to(dtype=DTYPES[case["dtype"]], device=device_of(case["device"]))
    m = torch.nn.utils.spectral_norm(m, n_power_iterations=k, eps=SPECTRAL_EPS)
    hook = next(h for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm))
    return m, hook


def need_k(case):
    k = case.get("n_power_iterations")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"{case['op']} needs n_power_iterations >= 1")
    return k


def op_copy(case):
    src = randn(case, case["rows"], case["cols"])
    dst = torch.empty_like(src)

    def body():
        dst.copy_(src)

    return Body(src.device, body)


def weight_norm_leaves(case, requires_grad):
    v = randn(case, case["rows"], case["cols"])
    g = torch.norm_except_dim(v, 2, 0)
    return v.requires_grad_(requires_grad), g.requires_grad_(requires_grad)


def op_weight_norm_forward(case):
    """Also the PyTorch side of weight_norm_forward_out: Rust writes into a reused output
    (norm_tch::weight_norm_out); PyTorch has no out= variant of _weight_norm."""
    v, g = weight_norm_leaves(case, False)

    def body():
        torch._weight_norm(v, g, 0)

    return Body(v.device, body)


def op_weight_norm_forward_backward(case):
    v, g = weight_norm_leaves(case, True)

    def between():
        v.grad = None
        g.grad = None

    def body():
        torch._weight_norm(v, g, 0).sum().backward()

    return Body(v.device, body, between)


def op_spectral_norm_forward_train(case):
    m, hook = spectral_linear(case, need_k(case))

    def body():
        hook.compute_weight(m, do_power_iteration=True)

    return Body(m.weight_orig.device, body)


def op_spectral_norm_forward_eval(case):
    m, hook = spectral_linear(case, 1)

    def body():
        with torch.no_grad():
            hook.compute_weight(m, do_power_iteration=False)

    return Body(m.weight_orig.device, body)


def op_spectral_norm_forward_backward(case):
    m, hook = spectral_linear(case, need_k(case))

    def between():
        m.weight_orig.grad = None

    def body():
        hook.compute_weight(m, do_power_iteration=True).sum().backward()

    return Body(m.weight_orig.device, body, between)


def op_power_iteration(case):
    k = need_k(case)
    weight = randn(case, case["rows"], case["cols"])
    sn = _SpectralNorm(weight, n_power_iterations=k, dim=0, eps=SPECTRAL_EPS)
    w_mat = sn._reshape_weight_to_matrix(weight)

    def body():
        sn._power_method(w_mat, k)

    return Body(weight.device, body)


def op_spectral_norm_train_step(case):
    m, _ = spectral_linear(case, need_k(case))
    x = randn(case, TRAIN_STEP_BATCH, case["cols"])
    optimizer = optim.Adam(m.parameters(), lr=TRAIN_STEP_LR, foreach=False)

    def body():
        loss = m(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return Body(x.device, body)


def seed_weight_norm_model():
    """data/seed_loop.py's weight-norm program: the layer and its optimizer."""
    linear_layer = nn.Linear(2, 3)
    linear_layer.weight.data = torch.tensor([[0, -2e-2], [0.3, 1.0], [1e-2, 0]], dtype=torch.float32)
    linear_layer.bias.data = torch.tensor([-0.3, 0, -2e-2], dtype=torch.float32)
    linear_layer = torch.nn.utils.weight_norm(linear_layer, name="weight")
    optimizer = optim.Adam(linear_layer.parameters(), lr=2e-3)
    return linear_layer, optimizer


def op_seed_loop_step(case):
    """Also the PyTorch side of seed_loop_step_cpp, whose other side is the C++ program."""
    if (case["rows"], case["cols"], case["dtype"], case["device"]) != (3, 2, "f32", "cpu"):
        raise ValueError(f"{case['op']} is a 3x2 float32 weight on the CPU, got {case}")
    random.seed(CASE_SEED)
    linear_layer, optimizer = seed_weight_norm_model()

    def step(x):
        output = linear_layer(x)
        loss = 1 - output.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def body():
        step(torch.randn(10, 2) * random.random() * 10)

    return Body(torch.device("cpu"), body)


# The whole-model rows (norm-bench/src/report/model_rows.rs): the examples' models, whose
# PyTorch twins are data/hifigan_block.py and data/sn_discriminator.py (found in --data-dir).
DATA_DIR = None
HIFIGAN_CONFIG = {"in_channels": 8, "channels": 16, "upsample_rates": [4, 2], "resblock_kernel_sizes": [3, 5], "dilations": [1, 3]}


def data_module(name):
    """data/<name>.py, imported from --data-dir."""
    import importlib

    if DATA_DIR is None:
        raise ValueError("the model rows need --data-dir (the repository's data/ folder)")
    if DATA_DIR not in sys.path:
        sys.path.insert(0, DATA_DIR)
    return importlib.import_module(name)


def model_setup(case):
    """model_rows.rs's setup: manual_seed(0), the model built on the CPU, its inputs drawn
    on the CPU, everything moved to the case's device. Returns (model, loss_fn, eval_input, optimizer)."""
    if case["dtype"] != "f32":
        raise ValueError(f"{case['op']} runs in float32 only, got {case['dtype']}")
    device = device_of(case["device"])
    batch, length = int(case["rows"]), int(case["cols"])
    torch.manual_seed(CASE_SEED)
    if case["op"].startswith("hifigan_"):
        hb = data_module("hifigan_block")
        model = hb.Generator(HIFIGAN_CONFIG)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight_g"):
                    p.mul_(torch.rand_like(p) + 0.5)
        x = torch.randn(batch, HIFIGAN_CONFIG["in_channels"], length)
        rates = HIFIGAN_CONFIG["upsample_rates"]
        target = torch.randn(batch, 1, length * rates[0] * rates[1])
        model.to(device)
        x, target = x.to(device), target.to(device)
        optimizer = optim.Adam(model.parameters(), lr=2e-4, betas=(0.8, 0.99), foreach=False)
        return model, (lambda: F.l1_loss(model(x), target)), x, optimizer
    if case["op"].startswith("sn_discriminator_"):
        if length != 256:
            raise ValueError(f"{case['op']}: the discriminator's images have 256 pixels, got {length}")
        sd = data_module("sn_discriminator")
        model = sd.Discriminator()
        real = torch.randn(batch, *sd.IMAGE)
        fake = torch.randn(batch, *sd.IMAGE)
        model.to(device)
        real, fake = real.to(device), fake.to(device)
        optimizer = optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
        return model, (lambda: sd.hinge_loss(model(real), model(fake))), real, optimizer
    raise ValueError(f"{case['op']} is not a model op")


def model_train_step(case):
    model, loss_fn, _, optimizer = model_setup(case)

    def body():
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return Body(device_of(case["device"]), body)


def model_eval(case, folded):
    model, _, x, _ = model_setup(case)
    if folded:
        if case["op"].startswith("hifigan_"):
            model.remove_weight_norm()
        else:
            from torch.nn.utils import parametrize, remove_spectral_norm

            remove_spectral_norm(model.convs[0])
            parametrize.remove_parametrizations(model.convs[1], "weight")
            remove_spectral_norm(model.convs[2])
            remove_spectral_norm(model.fc)
    model.eval()

    def body():
        with torch.no_grad():
            model(x)

    return Body(device_of(case["device"]), body)


def model_eval_cached(case):
    """PyTorch has no cache: its hooks recompute every weight on every forward."""
    return model_eval(case, folded=False)


def model_eval_folded(case):
    return model_eval(case, folded=True)


# Both models' rows share these programs; model_setup tells the models apart by case["op"].
op_hifigan_train_step = op_sn_discriminator_train_step = model_train_step
op_hifigan_eval_cached = op_sn_discriminator_eval_cached = model_eval_cached
op_hifigan_eval_folded = op_sn_discriminator_eval_folded = model_eval_folded


def model_losses(case, steps):
    """The float32 bits of the losses of `steps` training steps from model_setup(case)."""
    import struct

    random.seed(CASE_SEED)
    _, loss_fn, _, optimizer = model_setup(case)
    bits = []
    for _ in range(steps):
        loss = loss_fn()
        bits.append(struct.unpack("<I", struct.pack("<f", loss.item()))[0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return bits


def timed_program(name):
    """The function op_<name> that sets a case's PyTorch side up (name: the request's "pytorch_op")."""
    program = globals().get(f"op_{name}")
    if not callable(program):
        programs = (key for key, value in globals().items() if key.startswith("op_") and callable(value))
        known = ", ".join(sorted(key[len("op_"):] for key in programs))
        raise ValueError(f"no PyTorch program for op {name!r} (known: {known})")
    return program


def make_matrix(matrix, rows, cols, seed, spectrum):
    """convergence.rs's make_matrix: the study's float32 CPU matrix."""
    torch.manual_seed(seed)
    if matrix == "random":
        return torch.randn(rows, cols)
    if matrix == "ill_conditioned":
        k = min(rows, cols)
        if spectrum is None or len(spectrum) != k:
            raise ValueError(f"ill_conditioned needs a spectrum of {k} values")
        a = torch.randn(rows, k, dtype=torch.float64)
        b = torch.randn(cols, k, dtype=torch.float64)
        u, _ = torch.linalg.qr(a, mode="reduced")
        v, _ = torch.linalg.qr(b, mode="reduced")
        s = torch.tensor(spectrum, dtype=torch.float64)
        return torch.matmul(u.mul(s), v.t()).to(torch.float32)
    raise ValueError(f"unknown matrix kind {matrix!r}")


def sigma_estimates(request):
    """σ = dot(u, W v) after k iterations of torch.nn.utils.spectral_norm's hook from fresh u, v."""
    rows, cols, seed = int(request["rows"]), int(request["cols"]), int(request["seed"])
    w = make_matrix(request["matrix"], rows, cols, seed, request.get("spectrum"))
    sigmas = []
    for k in request["iterations"]:
        m = nn.Linear(cols, rows, bias=False)
        with torch.no_grad():
            m.weight.copy_(w)
        torch.manual_seed(seed + 1)
        m = torch.nn.utils.spectral_norm(m, n_power_iterations=int(k), eps=SPECTRAL_EPS)
        hook = next(h for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm))
        with torch.no_grad():
            hook.compute_weight(m, do_power_iteration=True)
            w_mat = hook.reshape_weight_to_matrix(m.weight_orig)
            sigmas.append(torch.dot(m.weight_u, torch.mv(w_mat, m.weight_v)).item())
    return sigmas


def seed_weight_norm_losses(k):
    """data/seed_loop.py's weight-norm program with K = k: the loss of each of its 3k steps."""
    torch.manual_seed(0)
    random.seed(0)
    linear_layer, optimizer = seed_weight_norm_model()
    losses = []

    def step(x):
        output = linear_layer(x)
        loss = 1 - output.mean()
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(k):
        step(torch.randn(10, 2) * random.random() * 10)
    for _ in range(k):
        x = torch.randn(10, 2) * random.random() * 10
        step(x)
        step(x)
    return losses


def spectral_linear_losses(steps):
    """spectral_norm(nn.Linear(64, 64)) fitting a random target with Adam(lr=1e-2)."""
    torch.manual_seed(0)
    m = torch.nn.utils.spectral_norm(nn.Linear(64, 64))
    x = torch.randn(128, 64)
    target = torch.randn(128, 64)
    optimizer = optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(m(x), target)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


LOSS_RUNS = {"seed_weight_norm": seed_weight_norm_losses, "spectral_norm_linear64": spectral_linear_losses}


def environment():
    env = {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda_version": torch.version.cuda,
    }
    try:
        import numpy

        env["numpy_version"] = numpy.__version__
    except ImportError:
        env["numpy_version"] = None
    return env


def answer_for(request, quiet):
    global SESSION
    kind = request.get("kind")
    threads = int(request.get("threads", 1))
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    answer = {"kind": kind}
    if kind == "env":
        answer.update(environment())
    elif kind == "open":
        SESSION = None  # the previous case's memory goes before this one is set up
        case = request["case"]
        answer.update(case=case, threads=torch.get_num_threads())
        program = timed_program(request.get("pytorch_op", case["op"]))
        torch.manual_seed(CASE_SEED)
        random.seed(CASE_SEED)
        SESSION = Session(program(case), request["sampling"])
        answer.update(warmup=SESSION.warmup, iterations_per_sample=SESSION.batch)
        if not quiet:
            log(f"{case['op']} {case['rows']}x{case['cols']} {case['dtype']} {case['device']}: open")
    elif kind == "burst":
        if SESSION is None:
            raise ValueError("no open case: send an open request first")
        nanos, elapsed = SESSION.burst(request)
        answer.update(samples_ns=nanos, elapsed_ns=elapsed)
    elif kind == "close":
        if SESSION is not None:
            answer["warmup"] = SESSION.warmup
        SESSION = None
    elif kind == "sigma":
        answer.update({k: request[k] for k in ("matrix", "rows", "cols", "seed", "iterations")})
        answer["sigma"] = sigma_estimates(request)
    elif kind == "loss":
        answer.update(run=request["run"], steps=request["steps"])
        if request["run"] not in LOSS_RUNS:
            raise ValueError(f"unknown loss run {request['run']!r} (known: {', '.join(LOSS_RUNS)})")
        answer["losses"] = LOSS_RUNS[request["run"]](int(request["steps"]))
    elif kind == "model_losses":
        answer.update(case=request["case"], steps=request["steps"])
        answer["loss_bits"] = model_losses(request["case"], int(request["steps"]))
    else:
        raise ValueError(f"unknown request kind {kind!r} (known: env, open, burst, close, sigma, loss, model_losses)")
    return answer


def serve(request, quiet):
    try:
        answer = answer_for(request, quiet)
    except Exception as e:  # noqa: BLE001 - reported to the caller, the next request may work
        answer = {"kind": request.get("kind"), "error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
        if "case" in request:
            answer["case"] = request["case"]
        log(f"{request.get('kind')} request failed: {answer['error']}")
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
    parser.add_argument("--data-dir", help="the repository's data/ folder (the whole models' PyTorch twins)")
    args = parser.parse_args()
    global DATA_DIR
    DATA_DIR = args.data_dir
    try:
        for request in requests(sys.stdin):
            serve(request, args.quiet)
    except (KeyboardInterrupt, BrokenPipeError):  # the caller was interrupted or went away
        sys.exit(130)


if __name__ == "__main__":
    main()
