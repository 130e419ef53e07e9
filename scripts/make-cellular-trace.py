#!/usr/bin/env python3
"""Writes the Mahimahi traces of examples/18-cellular-trace.toml.

A 20 s drive through cells: (seconds, Mbit/s) steps for each direction,
with a 300 ms outage at 12 s. Each output line is a millisecond at which
the link may deliver 1504 bytes (Mahimahi's format); a rate R gives
R / (1504 * 8) opportunities per ms, spread evenly with the remainder
carried, so the trace's mean rate over each step is the step's rate.
Usage: scripts/make-cellular-trace.py examples/traces
"""
import sys

STEPS = {
    "cellular-down.trace": [(4, 24), (3, 8), (3, 2), (2, 12), (0.3, 0), (2.7, 1), (5, 16)],
    "cellular-up.trace": [(4, 8), (3, 3), (3, 0.5), (2, 4), (0.3, 0), (2.7, 1), (5, 6)],
}


def lines(steps):
    out, t, acc = [], 0, 0.0
    for secs, mbit in steps:
        per_ms = mbit * 1e6 / (1504 * 8) / 1000
        for _ in range(int(round(secs * 1000))):
            t += 1
            acc += per_ms
            while acc >= 1.0:
                out.append(t)
                acc -= 1.0
    # The trace's length is its last line: end on the last millisecond.
    if not out or out[-1] != t:
        out.append(t)
    return out


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "examples/traces"
    for name, steps in STEPS.items():
        with open(f"{folder}/{name}", "w") as f:
            f.write("".join(f"{t}\n" for t in lines(steps)))


if __name__ == "__main__":
    main()
