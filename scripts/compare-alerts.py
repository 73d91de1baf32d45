#!/usr/bin/env python3
"""Runs spinewatch and Suricata 7 with the same rules on the same captures and compares their
alerts: the same sids on the same flows.

    scripts/compare-alerts.py [--spinewatch BIN] [--json OUT] [--home-net NET] RULES CAPTURE|DIR ...

RULES is one rule file (or a directory of *.rules files). For each capture:
`spinewatch replay --source file --rules RULES` and `suricata -r CAPTURE -k none -S RULES` (JA3
on, HOME_NET as given, else Suricata's default, the same default spinewatch uses). An alert is
keyed by (sid, flow: vlan, proto, the two endpoints in either order); both sides' counts per key
are compared. Prints per sid: flows alerted by both, by spinewatch only, by Suricata only; with
--json, the same and the differing flows. Needs `suricata` on PATH.
"""
import argparse, collections, glob, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcaps import captures  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def alerts(path):
    out = collections.Counter()
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event_type") != "alert":
                continue
            a = (e.get("src_ip"), e.get("src_port")), (e.get("dest_ip"), e.get("dest_port"))
            flow = (json.dumps(e.get("vlan")), e.get("proto")) + tuple(sorted(a, key=str))
            out[(e["alert"]["signature_id"], flow)] += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spinewatch", default=os.path.join(HERE, "..", "target", "release", "spinewatch"))
    ap.add_argument("--json")
    ap.add_argument("--home-net")
    ap.add_argument("rules")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    rule_files = sorted(glob.glob(os.path.join(a.rules, "*.rules"))) if os.path.isdir(a.rules) else [a.rules]
    per_sid = collections.defaultdict(lambda: [0, 0, 0])  # both, ours only, theirs only
    differing = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "sw.toml")
        with open(cfg, "w") as f:
            # spinewatch's own behavioural detectors have no Suricata counterpart.
            f.write("[behaviour]\nenabled = false\n")
            if a.home_net:
                f.write(f'[rules.address_vars]\nHOME_NET = "{a.home_net}"\n')
        for cap in captures(a.paths):
            sw, su = os.path.join(d, "sw.json"), os.path.join(d, "su")
            for p in (sw,):
                if os.path.exists(p):
                    os.remove(p)
            os.makedirs(su, exist_ok=True)
            for p in glob.glob(os.path.join(su, "*")):
                os.remove(p)
            args = [a.spinewatch, "replay", "--source", "file", "--workers", "1", "--config", cfg, "--eve", sw]
            for r in rule_files:
                args += ["--rules", r]
            r = subprocess.run(args + [cap], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"== {cap}: spinewatch failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            s_args = ["suricata", "-r", cap, "-k", "none", "--runmode", "single", "-l", su,
                      "--set", "app-layer.protocols.tls.ja3-fingerprints=yes"]
            if a.home_net:
                s_args += ["--set", f"vars.address-groups.HOME_NET={a.home_net}"]
            # Suricata takes one -S (and then ignores its yaml's rule-files): all in one file.
            allr = os.path.join(d, "all.rules")
            if not os.path.exists(allr):
                with open(allr, "w") as out:
                    for rf in rule_files:
                        out.write(open(rf, errors="replace").read() + "\n")
            s_args += ["-S", allr]
            subprocess.run(s_args, capture_output=True)
            ours, theirs = alerts(sw), alerts(os.path.join(su, "eve.json"))
            for k in set(ours) | set(theirs):
                sid, flow = k
                if k in ours and k in theirs:
                    per_sid[sid][0] += 1
                elif k in ours:
                    per_sid[sid][1] += 1
                    differing[sid].append(["spinewatch only", os.path.basename(cap), flow])
                else:
                    per_sid[sid][2] += 1
                    differing[sid].append(["suricata only", os.path.basename(cap), flow])
    both = sum(v[0] for v in per_sid.values())
    only_s = sum(v[1] for v in per_sid.values())
    only_t = sum(v[2] for v in per_sid.values())
    print(f"(sid, flow) pairs: both {both}, spinewatch only {only_s}, suricata only {only_t}")
    print("| sid | both | spinewatch only | suricata only |")
    print("|---|---|---|---|")
    for sid in sorted(per_sid):
        b, o, t = per_sid[sid]
        print(f"| {sid} | {b} | {o} | {t} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"both": both, "spinewatch_only": only_s, "suricata_only": only_t,
                       "per_sid": {str(k): v for k, v in per_sid.items()},
                       "differing": {str(k): v[:20] for k, v in differing.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
