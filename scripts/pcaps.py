"""The captures named on a command line: files as given, directories walked for .pcap/.pcapng
(in sorted order). Shared by the comparison scripts."""
import os


def captures(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    if f.endswith((".pcap", ".pcapng")):
                        yield os.path.join(root, f)
        else:
            yield p
