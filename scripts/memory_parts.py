#!/usr/bin/env python3
"""What was still allocated, per target and per part of `pantau all`.

Reads heaptrack's folded stacks of leaked (still allocated) bytes
(`heaptrack_print --flamegraph-cost-type leaked -F FILE`) and groups each
stack by the innermost frame that names a known part; prints a markdown
table. Used by scripts/memory-parts.sh (`make bench-memory-parts`).
"""

import re
import sys
from collections import Counter

# Innermost match wins; order breaks ties within one frame.
PARTS = [
    ("the loaded configuration", r"CollectorConfig|labels::Labels|check_http_url|Pattern::new|RawTarget|text::Raw"),
    ("the collector's schedule entries, compiled checks and timer queue",
     r"Entry::new|Target::from_config|Target::compile|DelayQueue|checks::http::build"),
    ("the collector's latest results (encoded; the same bytes the gateway keeps)", r"results::Results|encode_to_vec"),
    ("the collector's target states", r"state::States"),
    ("the collector's open history buckets", r"history::History"),
    ("the alert engine's series store", r"alert_engine::series"),
    ("the gateway's latest map", r"gateway::feed"),
    ("the metrics registry", r"metrics_exporter_prometheus|metrics_util"),
    ("SQLite (page caches, connections)", r"sqlite3|sqlx_sqlite"),
    ("the check clients' connections (hyper)", r"hyper"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in PARTS]


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: memory_parts.py LEAKED.folded TARGETS", file=sys.stderr)
        return 2
    path, targets = sys.argv[1], int(sys.argv[2])
    if targets < 1:
        print("memory_parts.py: TARGETS must be at least 1", file=sys.stderr)
        return 2
    parts: Counter = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, cost = line.rstrip("\n").rpartition(" ")
            if not cost.isdigit():
                continue
            n = int(cost)
            total += n
            part = "other (the runtime, the bus's replay buffer, fixed costs)"
            for frame in reversed(stack.split(";")):
                hit = next((name for name, rx in COMPILED if rx.search(frame)), None)
                if hit:
                    part = hit
                    break
            parts[part] += n
    print(f"\nstill allocated: {total / 2**20:.1f} MiB, {total / targets:.0f} bytes per target ({targets} targets)\n")
    print("| Part | Bytes per target | MiB |")
    print("|---|---|---|")
    for name, n in parts.most_common():
        print(f"| {name} | {n / targets:.0f} | {n / 2**20:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
