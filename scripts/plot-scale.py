#!/usr/bin/env python3
"""Table and plot of bench-scale.sh's scale.tsv: instructions and ns per
frame against N (log scale), one line per kind, and each kind's spread
(largest / smallest over N) against issue 16's bar of 1.5x.
    plot-scale.py scale.tsv scale.svg > table.md"""
import csv
import math
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
kinds = list(dict.fromkeys(r["kind"] for r in rows))
ns = sorted({int(r["n"]) for r in rows})
val = {(r["kind"], int(r["n"])): r for r in rows}

# The table.
print("| kind | " + " | ".join(f"N={n}" for n in ns) + " | max/min |")
print("|---|" + "---|" * (len(ns) + 1))
for metric, unit in [("instr_per_frame", "instr"), ("ns_per_frame", "ns")]:
    for k in kinds:
        xs = [float(val[(k, n)][metric]) for n in ns if (k, n) in val]
        cells = [f"{float(val[(k, n)][metric]):.0f}" if (k, n) in val else "" for n in ns]
        spread = max(xs) / min(xs) if xs and min(xs) > 0 else float("nan")
        print(f"| {k} ({unit}/frame) | " + " | ".join(cells) + f" | {spread:.2f}x |")
for k in kinds:
    cells = []
    for n in ns:
        r = val.get((k, n))
        cells.append(f"{int(r['rss_kb']) / 1024:.0f} MiB" if r else "")
    print(f"| {k} (peak RSS) | " + " | ".join(cells) + " | |")

# The plot: two panels side by side, hand-written SVG (no plotting library).
W, H, PAD = 460, 320, 60
colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 40}" '
       'font-family="sans-serif" font-size="12">',
       f'<rect width="{2 * W}" height="{H + 40}" fill="white"/>']
lx0, lx1 = math.log10(min(ns)), math.log10(max(ns))
for p, (metric, title) in enumerate([("instr_per_frame", "instructions per frame (callgrind)"),
                                     ("ns_per_frame", "ns per frame (this CPU)")]):
    ox = p * W
    ymax = max(float(r[metric]) for r in rows) * 1.1
    x = lambda n: ox + PAD + (math.log10(n) - lx0) / max(lx1 - lx0, 1e-9) * (W - PAD - 20)
    y = lambda v: H - PAD + 20 - v / ymax * (H - PAD - 20)
    svg.append(f'<text x="{ox + W / 2}" y="16" text-anchor="middle">{title}</text>')
    svg.append(f'<line x1="{ox + PAD}" y1="{y(0)}" x2="{ox + W - 20}" y2="{y(0)}" stroke="black"/>')
    svg.append(f'<line x1="{ox + PAD}" y1="{y(0)}" x2="{ox + PAD}" y2="{y(ymax)}" stroke="black"/>')
    for n in ns:
        svg.append(f'<text x="{x(n)}" y="{y(0) + 16}" text-anchor="middle">{n}</text>')
    for i in range(6):
        v = ymax * i / 5
        svg.append(f'<text x="{ox + PAD - 6}" y="{y(v) + 4}" text-anchor="end">{v:.0f}</text>')
        svg.append(f'<line x1="{ox + PAD}" y1="{y(v)}" x2="{ox + W - 20}" y2="{y(v)}" stroke="#ddd"/>')
    svg.append(f'<text x="{ox + W / 2}" y="{y(0) + 34}" text-anchor="middle">N (pipes, instances, classes, shaped flows)</text>')
    for ki, k in enumerate(kinds):
        pts = [(x(n), y(float(val[(k, n)][metric]))) for n in ns if (k, n) in val]
        c = colors[ki % len(colors)]
        svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                   % (c, " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
        for a, b in pts:
            svg.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>')
        svg.append(f'<text x="{ox + PAD + 10}" y="{40 + 16 * ki}" fill="{c}">{k}</text>')
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
