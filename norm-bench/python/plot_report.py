"""Draws the PNG plots of a `norm-bench report` run from its CSV files.

    python norm-bench/python/plot_report.py reports/latest

Reads <run>/timing.csv, convergence.csv and loss.csv (docs/reports.md has the schemas)
and writes into <run>/plots/:

- time_<op>.png: median time vs weight elements per op, log-log, Rust and PyTorch side
  by side (float32; one line per device, square weights joined, rectangular ones as
  separate markers; a dotted line for the fastest sample); weight_norm_forward_out's
  PyTorch line is torch._weight_norm (PyTorch has no out= variant);
- time_ratio.png: Rust / PyTorch median ratio vs size, every op on one chart;
- sigma_error.png: σ relative error vs power iterations, per matrix kind and shape, and
  dashed the residual bound a spectral-norm layer reports (relative to σ);
- loss.png: loss vs step of each training run, Rust and PyTorch.

Prints each written file's path, relative to the run folder, one per line on stdout.
Exits 4 (and writes nothing) when matplotlib cannot be imported; a missing or empty CSV
only skips its plots.
"""
import csv
import math
import os
import sys

NO_MATPLOTLIB = 4

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"plot_report.py: cannot import matplotlib ({e}); no plots", file=sys.stderr)
    sys.exit(NO_MATPLOTLIB)

RUST_COLOR, PYTORCH_COLOR = "#d95f02", "#1b6ac9"

# Ops whose two sides run different programs: the side labels say which.
SIDE_LABELS = {
    "weight_norm_forward_out": ("Rust (norm, weight_norm_out into a reused output)", "PyTorch eager (_weight_norm: no out= variant)"),
}


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def op_title(op, k):
    return f"{op} (k={k})" if op == "power_iteration" and k else op


def save(fig, run_dir, name, written):
    os.makedirs(os.path.join(run_dir, "plots"), exist_ok=True)
    relative = os.path.join("plots", name)
    fig.savefig(os.path.join(run_dir, relative), dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(relative)


def time_plots(run_dir, rows, written):
    rows = [r for r in rows if r["dtype"] == "f32" and not r["op"].startswith("seed_loop_step")]
    keys = []
    for r in rows:
        key = (r["op"], r["n_power_iterations"])
        if key not in keys:
            keys.append(key)
    for op, k in keys:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        mine = [r for r in rows if r["op"] == op and r["n_power_iterations"] == k]
        devices = sorted({r["device"] for r in mine})
        plotted = False
        for device in devices:
            style = "-" if device == "cpu" else "--"
            rust_label, pytorch_label = SIDE_LABELS.get(op, ("Rust (norm)", "PyTorch eager"))
            for side, color, label in (("rust", RUST_COLOR, rust_label), ("pytorch", PYTORCH_COLOR, pytorch_label)):
                points = []
                for r in mine:
                    med = number(r[f"{side}_median_us"])
                    if r["device"] != device or med is None:
                        continue
                    lo, hi = number(r[f"{side}_min_us"]), number(r[f"{side}_max_us"])
                    points.append((int(r["rows"]) * int(r["cols"]), med, lo, hi, r["rows"] == r["cols"], r["shape"]))
                if not points:
                    continue
                plotted = True
                square = sorted(p for p in points if p[4])
                rect = [p for p in points if not p[4]]
                name = f"{label}, {device}" if len(devices) > 1 else label
                if square:
                    xs = [p[0] for p in square]
                    ax.plot(xs, [p[1] / 1000 for p in square], "o" + style, color=color, label=f"{name}, median", markersize=4, linewidth=1.4)
                    if all(p[2] is not None for p in square):
                        ax.plot(xs, [p[2] / 1000 for p in square], ":", color=color, linewidth=0.9, alpha=0.7, label=f"{name}, fastest sample")
                for p in rect:
                    ax.plot([p[0]], [p[1] / 1000], marker="s", linestyle="", color=color, markersize=6, markerfacecolor="none")
                    if side == "rust":
                        ax.annotate(p[5], (p[0], p[1] / 1000), textcoords="offset points", xytext=(5, -10), fontsize=7, color="#555")
        if not plotted:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("weight elements (rows × cols; squares joined, □ rectangular)")
        ax.set_ylabel("median time per call (ms)")
        ax.set_title(f"{op_title(op, k)}: time vs size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, run_dir, f"time_{op}{'_k' + k if op == 'power_iteration' and k else ''}.png", written)


def ratio_plot(run_dir, rows, written):
    rows = [r for r in rows if r["dtype"] == "f32" and not r["op"].startswith("seed_loop_step") and r["rows"] == r["cols"]]
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    plotted = False
    keys = []
    for r in rows:
        key = (r["op"], r["n_power_iterations"], r["device"])
        if key not in keys:
            keys.append(key)
    for op, k, device in keys:
        points = sorted(
            (int(r["rows"]), number(r["ratio_median_rust_over_pytorch"]))
            for r in rows
            if (r["op"], r["n_power_iterations"], r["device"]) == (op, k, device) and number(r["ratio_median_rust_over_pytorch"]) is not None
        )
        if not points:
            continue
        plotted = True
        label = op_title(op, k) + (" (vs _weight_norm)" if op == "weight_norm_forward_out" else "") + (f" ({device})" if device != "cpu" else "")
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=label, linestyle="-" if device == "cpu" else "--")
    if not plotted:
        plt.close(fig)
        return
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (n × n weight)")
    ax.set_ylabel("Rust / PyTorch median time (below 1: Rust faster)")
    ax.set_title("Rust / PyTorch ratio per op, float32")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save(fig, run_dir, "time_ratio.png", written)


def sigma_plot(run_dir, rows, written):
    kinds = []
    for r in rows:
        if r["matrix"] not in kinds:
            kinds.append(r["matrix"])
    if not kinds:
        return
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.6 * len(kinds), 4.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        shapes = []
        for r in rows:
            if r["matrix"] == kind and r["shape"] not in shapes:
                shapes.append(r["shape"])
        for shape in shapes:
            points = sorted((int(r["n_power_iterations"]), number(r["rel_error"]), r["sigma2_over_sigma1"]) for r in rows if r["matrix"] == kind and r["shape"] == shape)
            floor = 1e-9  # an exact hit would vanish on a log axis
            line, = ax.plot([p[0] for p in points], [max(p[1] or 0.0, floor) for p in points], marker="o", markersize=4, label=f"{shape} (σ₂/σ₁ = {float(points[0][2]):.3f})")
            # The bound a spectral-norm layer reports (relative to σ), dashed in the same colour.
            bounds = sorted((int(r["n_power_iterations"]), number(r.get("rel_bound", ""))) for r in rows if r["matrix"] == kind and r["shape"] == shape)
            if bounds and all(b[1] is not None for b in bounds):
                ax.plot([b[0] for b in bounds], [max(b[1], floor) for b in bounds], linestyle="--", marker="x", markersize=3, color=line.get_color(), alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("power iterations k (fresh u, v)")
        ax.set_ylabel("|σ_k − σ₁| / σ₁ (solid); bound / σ_k (dashed)")
        ax.set_title(f"σ relative error, {kind.replace('_', '-')} matrices")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, run_dir, "sigma_error.png", written)


def loss_plot(run_dir, rows, written):
    runs = []
    for r in rows:
        if r["run"] not in runs:
            runs.append(r["run"])
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(5.6 * len(runs), 4.2), squeeze=False)
    for ax, run in zip(axes[0], runs):
        mine = [r for r in rows if r["run"] == run]
        for side, color, label, style, width in (("loss_pytorch", PYTORCH_COLOR, "PyTorch eager", "-", 3.2), ("loss_rust", RUST_COLOR, "Rust (norm)", "--", 1.4)):
            points = [(int(r["step"]), number(r[side])) for r in mine if number(r[side]) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, color=color, linewidth=width, label=label, alpha=0.85)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"loss vs step: {run}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, run_dir, "loss.png", written)


def main():
    if len(sys.argv) != 2:
        print("usage: plot_report.py RUN_DIR", file=sys.stderr)
        sys.exit(2)
    run_dir = sys.argv[1]
    written = []
    timing = read_csv(os.path.join(run_dir, "timing.csv"))
    time_plots(run_dir, timing, written)
    ratio_plot(run_dir, timing, written)
    sigma_plot(run_dir, read_csv(os.path.join(run_dir, "convergence.csv")), written)
    loss_plot(run_dir, read_csv(os.path.join(run_dir, "loss.csv")), written)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
