#!/usr/bin/env python3
"""Where chatgate's instructions over the actix-web + awc floor go, by the
library whose code ran them (callgrind's self counts, grouped by crate).

    OUT=/tmp/prof bench/instructions.sh
    python3 bench/split.py /tmp/prof [REQUESTS]     (REQUESTS: N, 3000)

Inlined code counts where it was inlined: a hash table probe inlined into
one of chatgate's functions counts as chatgate's.
"""
import glob
import re
import subprocess
import sys

FRAMEWORK = {
    "actix_http", "actix_web", "actix_router", "actix_service", "actix_server",
    "actix_codec", "actix_rt", "actix_utils", "awc", "tokio", "tokio_util", "mio",
    "httparse", "http", "bytes", "futures_util", "futures_core", "bytestring",
    "httpdate", "mime", "local_waker",
}
GROUPS = [
    ("framework (actix-web, awc, tokio, http)", FRAMEWORK),
    ("diesel (statements, binding)", {"diesel", "r2d2", "libsqlite3_sys"}),
    ("tracing (the log line)", {"tracing", "tracing_core", "tracing_subscriber",
                                "tracing_appender", "crossbeam_channel"}),
    ("std (hash maps, formatting, UTF-8 checks)", {"core", "alloc", "std", "hashbrown"}),
    ("serde_json (request probe, reply usage)", {"serde_json", "serde_core", "serde"}),
    ("sha2 (the key's digest)", {"sha2", "digest"}),
    ("chatgate's own functions", {"chatgate"}),
]
SQLITE = re.compile(r"(sqlite3|vdbe|btree|pager|wal|unix|getPage|memjrnl|insertCell|"
                    r"balance|moveTo|pcache|releaseMem|applyAffinity|columnMem)", re.I)
# The first crate path named: a type's, or a generic impl's trait's.
CRATE = re.compile(r"([a-z_][a-z_0-9]*)::")


def group(function):
    name = function.replace("???:", "")
    if "sysdeps" in name or name.startswith("./"):
        return "libc (memcpy, memset)"
    if SQLITE.match(name):
        return "SQLite"
    if name.startswith("_rjem") or "je_" in name or "tcache" in name:
        return "jemalloc"
    m = CRATE.search(name.replace("core::ptr::drop_in_place<", ""))
    crate = m.group(1) if m else None
    for label, crates in GROUPS:
        if crate in crates:
            return label
    return "other crates (prometheus, chrono, memchr, arc-swap, …)"


def self_counts(files):
    counts = {}
    for f in files:
        out = subprocess.run(["callgrind_annotate", "--threshold=100", f],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
            if m and "PROGRAM TOTALS" not in line:
                g = group(m.group(2))
                counts[g] = counts.get(g, 0) + int(m.group(1).replace(",", ""))
    return counts


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    gate = self_counts(glob.glob(f"{out}/chatgate.out*"))
    floor = self_counts(glob.glob(f"{out}/floor.out*"))
    rows = sorted(set(gate) | set(floor), key=lambda g: floor.get(g, 0) - gate.get(g, 0))
    print("| where (self counts, per request) | chatgate | actix-web + awc alone | over the floor |")
    print("|---|---|---|---|")
    k = lambda x: f"{x / n / 1000:.1f}k"
    for g in rows:
        a, b = gate.get(g, 0), floor.get(g, 0)
        print(f"| {g} | {k(a)} | {k(b)} | {'+' if a >= b else '-'}{k(abs(a - b))} |")
    a, b = sum(gate.values()), sum(floor.values())
    print(f"| all | {k(a)} | {k(b)} | +{k(a - b)} |")


if __name__ == "__main__":
    main()
