#!/usr/bin/env python3
"""Runs spinewatch and Suricata 7 on the same captures and compares their records field by field.

    scripts/compare-records.py [--spinewatch BIN] [--json OUT] CAPTURE|DIR ...

For each capture: `spinewatch replay --source file` and `suricata -r CAPTURE -k none` (JA3 and
HASSH on, everything else default), then, per (event type, tuple): the number of dns / http /
tls / ssh events and flow records, every field both write (equal or a difference), the fields only
one writes, and app_proto / packets / bytes of each flow. Prints one block per capture and a
total; `--json` writes the same as JSON. Needs `suricata` on PATH.
"""
import argparse, collections, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcaps import captures  # noqa: E402

OURS_ONLY = {"request_body_len", "client_alpns", "server_alpns", "ja4", "tunnel"}
TYPES = ("dns", "http", "tls", "ssh")


def load(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def table(events):
    m = collections.defaultdict(list)
    for e in events:
        t = e.get("event_type")
        if t in TYPES:
            body = e.get(t, {})
        elif t == "flow":
            f = e.get("flow", {})
            body = {"app_proto": e.get("app_proto"),
                    "counts": [f.get("pkts_toserver"), f.get("pkts_toclient"), f.get("bytes_toserver"), f.get("bytes_toclient")]}
        else:
            continue
        k = (t, json.dumps(e.get("vlan")), e.get("src_ip"), e.get("src_port"), e.get("dest_ip"), e.get("dest_port"), e.get("proto"))
        m[k].append(body)
    for v in m.values():
        # Paired in an order both sides share: fields only spinewatch writes left out.
        v.sort(key=lambda x: json.dumps({k: y for k, y in x.items() if k not in OURS_ONLY}, sort_keys=True))
    return m


def compare(ours, theirs):
    a, b = table(ours), table(theirs)
    same = collections.Counter()
    diffs = collections.defaultdict(list)
    for k in sorted(set(a) | set(b), key=str):
        t = k[0]
        x, y = a.get(k, []), b.get(k, [])
        if len(x) != len(y):
            diffs[f"{t}: count"].append(f"{k[2]}:{k[3]} -> {k[4]}:{k[5]} {k[6]}: spinewatch {len(x)}, suricata {len(y)}")
        for ev, sv in zip(x, y):
            for f, v in sv.items():
                if f not in ev:
                    if v is not None:
                        diffs[f"{t}.{f}: only suricata"].append(f"{k[2]}:{k[3]}: {json.dumps(v)[:160]}")
                elif ev[f] == v:
                    same[f"{t}.{f}"] += 1
                else:
                    diffs[f"{t}.{f}: differs"].append(f"{k[2]}:{k[3]}: spinewatch {json.dumps(ev[f])[:160]} / suricata {json.dumps(v)[:160]}")
            for f in ev:
                if f not in sv and ev[f] is not None and f not in OURS_ONLY:
                    diffs[f"{t}.{f}: only spinewatch"].append(f"{k[2]}:{k[3]}: {json.dumps(ev[f])[:160]}")
    return same, diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spinewatch", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "spinewatch"))
    ap.add_argument("--json")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    report = {}
    total_same, total_diff = collections.Counter(), collections.Counter()
    for cap in captures(args.paths):
        with tempfile.TemporaryDirectory() as d:
            sw = os.path.join(d, "sw.json")
            r = subprocess.run([args.spinewatch, "replay", "--source", "file", "--workers", "1", "--eve", sw, cap],
                               capture_output=True, text=True)
            if r.returncode != 0:
                report[cap] = {"error": "spinewatch: " + r.stderr.strip().splitlines()[-1]}
                print(f"== {cap}\n  spinewatch failed: {r.stderr.strip().splitlines()[-1]}")
                continue
            subprocess.run(["suricata", "-r", cap, "-k", "none", "-S", "/dev/null", "--runmode", "single", "-l", d,
                            "--set", "app-layer.protocols.tls.ja3-fingerprints=yes",
                            "--set", "app-layer.protocols.ssh.hassh=yes"], capture_output=True)
            ours, theirs = load(sw), load(os.path.join(d, "eve.json"))
        same, diffs = compare(ours, theirs)
        n = lambda evs, t: sum(1 for e in evs if e.get("event_type") == t)
        counts = {t: [n(ours, t), n(theirs, t)] for t in ("flow",) + TYPES}
        report[cap] = {"events": counts, "same": dict(same), "differences": {k: v for k, v in diffs.items()}}
        total_same.update(same)
        for k, v in diffs.items():
            total_diff[k] += len(v)
        print(f"== {cap}")
        print("  events (spinewatch/suricata): " + ", ".join(f"{t} {a}/{b}" for t, (a, b) in counts.items() if a or b))
        print(f"  fields equal: {sum(same.values())}")
        for k, v in sorted(diffs.items()):
            print(f"  {k}: {len(v)}")
            for x in v[:3]:
                print(f"      {x}")
    print("== total")
    print(f"  fields equal: {sum(total_same.values())} ({', '.join(f'{k} {v}' for k, v in sorted(total_same.items()) if not k.startswith('flow'))})")
    for k, v in sorted(total_diff.items()):
        print(f"  {k}: {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
