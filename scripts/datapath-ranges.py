#!/usr/bin/env python3
"""Ranges over several datapath benchmark runs: for each setup, the lowest and
highest ratio to kernel IPv4 forwarding (same run, same NAPI mode) at 64 and
1500 bytes, and the lowest and highest TCP figure.

Usage: scripts/datapath-ranges.py RUN_DIR...   (bench-results/datapath/<run>)
"""
import json
import sys


def main(dirs):
    agg = {}
    for d in dirs:
        rows = [json.loads(line) for line in open(f"{d}/results.jsonl")]
        kernel = {r["setup"].split("NAPI ")[-1]: r for r in rows if r["setup"].startswith("kernel IPv4")}
        for r in rows:
            k = kernel[r["setup"].split("NAPI ")[-1]]
            a = agg.setdefault(r["setup"], {"64 B": [], "1500 B": [], "TCP Gbit/s": []})
            a["64 B"].append(r["pps64"]["pps"] / k["pps64"]["pps"])
            a["1500 B"].append(r["pps1500"]["pps"] / k["pps1500"]["pps"])
            if r["tcp_bps"]:
                a["TCP Gbit/s"].append(r["tcp_bps"] / 1e9)
    print(f"runs: {', '.join(d.rstrip('/').split('/')[-1] for d in dirs)}")
    print("| setup | 64 B vs kernel fwd | 1500 B vs kernel fwd | TCP Gbit/s |")
    print("|---|---|---|---|")
    for setup, a in agg.items():
        cells = [f"{min(v):.2f}–{max(v):.2f}" if v else "–" for v in a.values()]
        print(f"| {setup} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
