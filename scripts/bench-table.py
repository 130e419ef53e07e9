#!/usr/bin/env python3
"""Renders the benchmark tables from the newest run in bench-results/sched/.

Usage: scripts/bench-table.py [--update-readme]
Prints markdown; with --update-readme, replaces the block between
<!-- bench-table:start --> and <!-- bench-table:end --> in README.md and
writes bench-results/sched/README.md.
"""
import json, os, sys, glob

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runs = sorted(glob.glob(os.path.join(root, "bench-results/sched/*/callgrind.tsv")), key=os.path.getmtime)
if not runs:
    sys.exit("no runs in bench-results/sched/")
run = os.path.dirname(runs[-1])
name = os.path.relpath(run, root)

# Bars from the scheduling-core issue (instructions per packet at 1024 flows) and the C reference.
bars = {"qfq": 140, "drr": 80, "wf2q": 1000}
c_ref = {"qfq": 173, "drr": 92, "wf2q": 1491, "fifo": 43}

cg = {}
for line in open(os.path.join(run, "callgrind.tsv")).read().splitlines()[1:]:
    s, n, p, ipp, net = line.split("\t")
    cg[(s, int(n))] = float(net)
flows = sorted({n for (_, n) in cg})
scheds = [s for s in ["fifo", "prio", "drr", "wf2q", "qfq"] if any((s, n) in cg for n in flows)]

out = []
out.append(f"Run `{name}` ({open(os.path.join(run, 'env.txt')).read().splitlines()[2].replace('cpu: ', '')}).\n")
out.append("**Scheduler cost, instructions per packet (enqueue + dequeue), callgrind, sched-bench fill/drain (qmax 20/flow), minus the null harness:**\n")
out.append("| sched | " + " | ".join(f"{n} flows" for n in flows) + " | bar @1024 | C reference @1024 | max/min over flows |")
out.append("|---|" + "---|" * (len(flows) + 3))
for s in scheds:
    vals = [cg.get((s, n)) for n in flows]
    got = [v for v in vals if v is not None]
    ratio = max(got) / min(got) if got and min(got) > 0 else float("nan")
    cells = " | ".join(f"{v:.1f}" if v is not None else "–" for v in vals)
    bar = bars.get(s)
    at = cg.get((s, 1024))
    mark = "" if bar is None or at is None else (" ✅" if at <= bar else " ❌")
    out.append(f"| {s} | {cells} | {bar if bar else '–'}{mark} | {c_ref.get(s, '–')} | {ratio:.2f} |")

timing = [json.loads(l) for l in open(os.path.join(run, "timing.jsonl"))]
tflows = sorted({r["flows"] for r in timing})
out.append("\n**Time per packet (ns, sched-bench, median of 3; shared 2-vCPU VM, noisy), scheduler minus null:**\n")
out.append("| sched | " + " | ".join(f"{n}" for n in tflows) + " |")
out.append("|---|" + "---|" * len(tflows))
for s in ["fifo", "prio", "drr", "wf2q", "qfq"]:
    row = {r["flows"]: r["sched_ns_per_pkt"] for r in timing if r["sched"] == s}
    out.append(f"| {s} | " + " | ".join(f"{row[n]:.1f}" if n in row else "–" for n in tflows) + " |")

crit = os.path.join(run, "criterion.txt")
if os.path.exists(crit) and os.path.getsize(crit) > 0:
    out.append("\n**criterion, steady backlog (2 packets/flow), time per enqueue+dequeue (median estimate, ns):**\n")
    import re
    rows = {}
    pat = re.compile(r"enqueue\+dequeue/(\w+)/(\d+)\s+time:\s+\[([\d.]+) (\S+) ([\d.]+) (\S+)")
    for m in pat.finditer(open(crit).read()):
        s, n, med, unit = m.group(1), int(m.group(2)), float(m.group(5)), m.group(6)
        rows.setdefault(s, {})[n] = med * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "ps": 1e-3}.get(unit, 1)
    cflows = sorted({n for r in rows.values() for n in r})
    out.append("| sched | " + " | ".join(str(n) for n in cflows) + " |")
    out.append("|---|" + "---|" * len(cflows))
    for s in ["fifo", "prio", "drr", "wf2q", "qfq"]:
        if s in rows:
            out.append(f"| {s} | " + " | ".join(f"{rows[s][n]:.1f}" if n in rows[s] else "–" for n in cflows) + " |")

# --- parse + classify (bench-results/classify/) -----------------------------
cruns = sorted(glob.glob(os.path.join(root, "bench-results/classify/*/results.jsonl")), key=os.path.getmtime)
if cruns:
    crun = os.path.dirname(cruns[-1])
    rows = [json.loads(l) for l in open(os.path.join(crun, "results.jsonl"))]
    instr = {}
    cgp = os.path.join(crun, "callgrind.tsv")
    if os.path.exists(cgp):
        for line in open(cgp).read().splitlines()[1:]:
            fr, st, n, hit, flows, ipf = line.split("\t")
            instr[(fr, st, int(n), hit)] = float(ipf)
    out.append(f"\n**Parse + classify, ns per frame (median of 5) / instructions per frame (callgrind)**, run `{os.path.relpath(crun, root)}`; "
               "bars: ≤ 40 ns with 20 rules, ≤ 60 ns with 1000 rules. `acl`: 3 match shapes (flow cache off); "
               "`shapes`: 14–33 shapes (flow cache on). No rule matches (every shape probed on a cache miss):\n")
    out.append("| frame | rule set | rules | 1000 flows | 100000 flows (cache thrashes) | instructions | last rule matches: ns (1000 flows) / instructions |")
    out.append("|---|---|---|---|---|---|---|")
    for fr in ["v4udp", "v6tcp"]:
        for st in ["acl", "shapes"]:
            for n in [1, 20, 1000]:
                r = {x["flows"]: x["ns_per_frame"] for x in rows
                     if x["frame"] == fr and x["rule_set"] == st and x["rules"] == n and x["hit"] == "none"}
                if not r:
                    continue
                last = [x["ns_per_frame"] for x in rows if x["frame"] == fr and x["rule_set"] == st
                        and x["rules"] == n and x["hit"] == "last" and x["flows"] == 1000]
                i = instr.get((fr, st, n, "none"))
                il = instr.get((fr, st, n, "last"))
                lcol = (f"{last[0]:.1f} / {il if il is not None else '–'}") if last else "–"
                out.append(f"| {fr} | {st} | {n} | {r.get(1000, float('nan')):.1f} | {r.get(100000, float('nan')):.1f} | {i if i is not None else '–'} | {lcol} |")
    # The pnet comparison is measured less often: the newest run that has it.
    wruns = sorted(glob.glob(os.path.join(root, "bench-results/classify/*/wire-criterion.txt")), key=os.path.getmtime)
    wire = wruns[-1] if wruns else os.path.join(crun, "wire-criterion.txt")
    if os.path.exists(wire):
        import re
        txt = open(wire).read()
        pat = re.compile(r"parse/(\w+)/([\w-]+)\s+time:\s+\[[\d.]+ \S+ ([\d.]+) (\S+)")
        w = {(m.group(1), m.group(2)): float(m.group(3)) for m in pat.finditer(txt)}
        out.append("\n**Header parsing, ours vs pnet_packet** (criterion median, same extraction, `cargo bench -p sched --bench wire`):\n")
        out.append("| frame | sched::wire::parse (ns) | pnet_packet (ns) | pnet / ours |")
        out.append("|---|---|---|---|")
        for fr in sorted({k[1] for k in w}):
            a, b = w.get(("wire", fr)), w.get(("pnet", fr))
            if a and b:
                out.append(f"| {fr} | {a:.1f} | {b:.1f} | {b / a:.2f}× |")

druns = sorted(glob.glob(os.path.join(root, "bench-results/datapath/*/table.md")), key=os.path.getmtime)
if druns:
    drun = os.path.dirname(druns[-1])
    old_format = "pps64" not in open(os.path.join(drun, "results.jsonl")).read()
    if old_format:
        out.append(f"\n**Datapath, side by side in one run** (`scripts/bench-datapath.sh`, run `{os.path.relpath(drun, root)}`; "
                   "veth, copy mode, 2 vCPU — not NIC numbers). TCP: iperf3 gen → sink, median of 3 × 5 s, through the scheduled "
                   "direction at line rate. UDP: 64-byte datagrams received per second; bounded by iperf3's single-core sender, "
                   "so only the ratio means anything:\n")
    else:
        out.append(f"\n**Datapath, side by side in one run** (`scripts/bench-datapath.sh`, run `{os.path.relpath(drun, root)}`; "
                   "veth, copy mode, 2 vCPU — not NIC numbers). Packets/s: xdpgen sends 1024 unpaced UDP flows as fast as it "
                   "can and counts what reaches the sink, median of 3 × 4 s; CPU: all CPUs' busy time per forwarded packet "
                   "(generator included, the same in every row) and xdpsched's own process time; TCP: iperf3 gen → sink, "
                   "median of 3 × 5 s, through the scheduled direction at line rate:\n")
    out.append(open(druns[-1]).read().rstrip())

gruns = sorted(glob.glob(os.path.join(root, "bench-results/gen/*/table.md")), key=os.path.getmtime)
if gruns:
    grun = os.path.dirname(gruns[-1])
    out.append(f"\n**xdpgen, side by side in one run** (`scripts/bench-gen.sh`, run `{os.path.relpath(grun, root)}`; "
               "direct veth gen0 → sink0, copy mode, 2 vCPU). Bars: ≥ 1 Gbit/s of 1500-byte frames within 0.5 %, "
               "≥ 3× iperf3's packets/s with 64-byte frames.\n")
    out.append(open(gruns[-1]).read().rstrip())

table = "\n".join(out) + "\n"
print(table)
if "--update-readme" in sys.argv:
    readme = os.path.join(root, "README.md")
    text = open(readme).read()
    a, b = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
    i, j = text.index(a) + len(a), text.index(b)
    open(readme, "w").write(text[:i] + "\n" + table + text[j:])
    method = open(os.path.join(root, "bench-results/sched/METHOD.md")).read() if os.path.exists(os.path.join(root, "bench-results/sched/METHOD.md")) else ""
    open(os.path.join(root, "bench-results/sched/README.md"), "w").write("# Scheduler benchmarks\n\nGenerated by `scripts/bench-table.py` from the newest run; produced by `scripts/bench-sched.sh`.\n\n" + table + "\n" + method)
