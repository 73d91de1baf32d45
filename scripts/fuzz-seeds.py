#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from a generated capture (spinewatch gen).

    scripts/fuzz-seeds.py CAPTURE.pcap fuzz/corpus

decode: single frames; pipeline: runs of frames with 2-byte length prefixes (the target's
format); dns: DNS messages; http / tls / ssh: a control byte then the payloads of one flow, both
directions in order; stream and defrag start from a few structured inputs.
"""
import os, struct, sys, collections


def frames(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            _, _, incl, _ = struct.unpack(endian + "IIII", h)
            yield f.read(incl)


def l4(frame):
    """(proto, sport, dport, payload, flowkey) of an Ethernet frame, skipping VLAN tags."""
    et = struct.unpack(">H", frame[12:14])[0]
    off = 14
    while et in (0x8100, 0x88A8):
        et = struct.unpack(">H", frame[off + 2:off + 4])[0]
        off += 4
    if et == 0x0800:
        ihl = (frame[off] & 15) * 4
        proto = frame[off + 9]
        src, dst = frame[off + 12:off + 16], frame[off + 16:off + 20]
        total = struct.unpack(">H", frame[off + 2:off + 4])[0]
        end = off + total
        off += ihl
    elif et == 0x86DD:
        proto = frame[off + 6]
        src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
        end = off + 40 + struct.unpack(">H", frame[off + 4:off + 6])[0]
        off += 40
    else:
        return None
    if proto == 6:
        sp, dp = struct.unpack(">HH", frame[off:off + 4])
        hl = (frame[off + 12] >> 4) * 4
        pay = frame[off + hl:end]
    elif proto == 17:
        sp, dp = struct.unpack(">HH", frame[off:off + 4])
        pay = frame[off + 8:end]
    else:
        return None
    key = tuple(sorted([(src, sp), (dst, dp)]))
    return proto, sp, dp, pay, key


def main():
    cap, out = sys.argv[1], sys.argv[2]
    fs = list(frames(cap))
    def put(target, name, data):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    for i, f in enumerate(fs[:300]):
        put("decode", f"frame{i}", f)
    for i in range(0, min(len(fs), 3000), 60):
        run = b"".join(struct.pack(">H", len(f)) + f for f in fs[i:i + 60])
        put("pipeline", f"run{i}", run)
    flows = collections.defaultdict(list)
    dns = 0
    for f in fs:
        r = l4(f)
        if not r:
            continue
        proto, sp, dp, pay, key = r
        if proto == 17 and 53 in (sp, dp) and pay and dns < 100:
            put("dns", f"msg{dns}", pay)
            dns += 1
        if proto == 6 and pay:
            flows[(key, dp if dp < sp else sp)].append(pay)
    n = collections.Counter()
    for (key, port), pays in flows.items():
        target = {80: "http", 8080: "http", 8000: "http", 443: "tls", 8443: "tls", 22: "ssh"}.get(port)
        if target and n[target] < 40:
            put(target, f"flow{n[target]}", bytes([0x1f]) + b"".join(pays))
            n[target] += 1
    # The rule parser: the demo rules, one per seed, and option lists alone.
    rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "rules", "demo.rules")
    for i, line in enumerate(l for l in open(rules) if l.strip() and not l.startswith("#")):
        put("rules", f"rule{i}", line.strip().encode())
        opts = line[line.index("(") + 1:line.rindex(")")]
        put("rules", f"opts{i}", opts.encode())
    # The config loader: the example configs; sink URLs; a spool segment as a sink writes it.
    cfgs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")
    for name in sorted(os.listdir(cfgs)):
        if name.endswith(".toml"):
            put("config", name, open(os.path.join(cfgs, name), "rb").read())
    for i, u in enumerate(["syslog+tls://siem.example:6514?format=cef&ca=/etc/ca.pem&facility=local3",
                           "ipfix+udp://[2001:db8::1]:4739?domain=7", "redis://127.0.0.1/eve%3Aflows?mode=stream",
                           "file:///var/log/eve.json?rotate_bytes=1000&rotate_secs=60&fsync=always", "-"]):
        put("sink_url", f"url{i}", u.encode())
    seg = b"\0"
    for k in range(4):
        data = b'{"a":%d}\n{"b":%d}\n' % (k, k)
        seg += struct.pack("<6I", 0x53575350, 2, 2, len(data), len(data) // 2, len(data)) + data
    put("spool", "segment", seg)
    put("stream", "seq", bytes(range(0, 240)))
    put("defrag", "frags", bytes([0, 0, 1, 3, 7, 0, 3, 1, 3, 7, 0, 6, 0, 3, 7]))


if __name__ == "__main__":
    main()
