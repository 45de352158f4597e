"""Draws `norm-bench compare`'s plot from its compare.csv.

    python norm-bench/python/plot_compare.py OUT_DIR THRESHOLD

Reads OUT_DIR/compare.csv (docs/reports.md) and writes OUT_DIR/compare.png: per case, the
change B / A of the Rust / PyTorch ratio (log scale, with its interval-derived range when
both runs have intervals) and of each side's median, with the threshold marked; red bars
are regressions. Exits 4 (and writes nothing) when matplotlib cannot be imported.
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
    print(f"plot_compare.py: cannot import matplotlib ({e}); no plot", file=sys.stderr)
    sys.exit(NO_MATPLOTLIB)


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def main():
    if len(sys.argv) != 3:
        print("usage: plot_compare.py OUT_DIR THRESHOLD", file=sys.stderr)
        sys.exit(2)
    out, threshold = sys.argv[1], float(sys.argv[2])
    with open(os.path.join(out, "compare.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if number(r["ratio_change"]) is not None]
    labels = [" ".join(x for x in (r["op"], r["shape"], r["dtype"], r["device"], f"k={r['n_power_iterations']}" if r["n_power_iterations"] else "") if x) for r in rows]
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.28 * len(rows) + 1.5)))
    ys = range(len(rows))
    colors = ["#d62728" if r["verdict"] == "regression" else "#2ca02c" if r["verdict"] == "improvement" else "#7f7f7f" for r in rows]
    ax.barh(ys, [math.log(number(r["ratio_change"])) for r in rows], color=colors, height=0.6, label="ratio B / A")
    for i, r in enumerate(rows):
        a_lo, a_hi, b_lo, b_hi = (number(r[c]) for c in ("ratio_a_low", "ratio_a_high", "ratio_b_low", "ratio_b_high"))
        if None not in (a_lo, a_hi, b_lo, b_hi):
            ax.plot([math.log(b_lo / a_hi), math.log(b_hi / a_lo)], [i, i], color="black", linewidth=1)
        for column, marker, name in (("rust_change", "o", "Rust median B / A"), ("pytorch_change", "x", "PyTorch median B / A")):
            value = number(r[column])
            if value is not None:
                ax.plot([math.log(value)], [i], marker, color="#d95f02" if marker == "o" else "#1b6ac9", label=name if i == 0 else None)
    for t in (threshold, 1 / threshold):
        ax.axvline(math.log(t), color="#d62728", linestyle="--", linewidth=0.8)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"log(B / A); dashed: threshold x{threshold} (red bars: regressions)")
    ax.set_title("norm-bench compare: how each case moved")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "compare.png"), dpi=110)
    print("compare.png")


if __name__ == "__main__":
    main()
