#!/usr/bin/env python3
"""Turns criterion's estimates from `cargo bench -p durlab-engine --bench aof` and `--bench
snapshot` into the ratio tables the engine's targets are stated in (engine vs raw loop, group
commit, batching, replay; snapshot load vs replaying the AOF of the same state).

Usage: scripts/bench-ratios.py [target/criterion]
Every figure is a ratio of two benchmarks measured in the same `cargo bench` run.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "criterion")
MEAN_NS = {}


def load():
    """Maps 'group/function/param' to ops per second (or bytes per second for replay), and
    fills `MEAN_NS` with each benchmark's mean time per iteration."""
    rates = {}
    for dirpath, _, files in os.walk(root):
        if "benchmark.json" not in files or not dirpath.endswith("new"):
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        ns = est["mean"]["point_estimate"]
        MEAN_NS[bench["full_id"]] = ns
        tp = bench.get("throughput") or {}
        per_iter = tp.get("Elements") or tp.get("Bytes") or 1
        rates[bench["full_id"]] = per_iter * 1e9 / ns
    return rates


def fmt(x):
    return "n/a" if x is None else f"{x:,.0f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def snapshot_load_table():
    """Snapshot load against replaying the AOF that produced the same state: both are
    `Engine::open` of the same keyspace (engine/benches/snapshot.rs), dropped untimed."""
    loads = {k.rsplit("/", 1)[1]: ns for k, ns in MEAN_NS.items() if k.startswith("snapshot/load/")}
    if not loads:
        return
    print("\n## Snapshot load vs AOF replay of the same state (same run)\n")
    print("| keys | snapshot load s | AOF replay s | replay / load |")
    print("|---|---|---|---|")
    for keys, load_ns in sorted(loads.items(), key=lambda kv: int(kv[0])):
        replay_ns = MEAN_NS.get(f"snapshot/replay-aof/{keys}")
        q = ratio(replay_ns, load_ns)
        replay = "n/a" if replay_ns is None else f"{replay_ns / 1e9:.3f}"
        print(f"| {int(keys):,} | {load_ns / 1e9:.3f} | {replay} | {'n/a' if q is None else f'{q:.2f}x'} |")


def main():
    r = load()
    if not r:
        sys.exit(f"no criterion results under {root}: run cargo bench -p durlab-engine --bench aof (or --bench snapshot) first")
    if not any(k.startswith("append/") or k.startswith("writers/") for k in r):
        snapshot_load_table()
        return
    print("## One writer: engine / raw loop on the same kind of file (same run)\n")
    print("| record | prealloc | policy/backend | engine ops/s | raw ops/s | ratio |")
    print("|---|---|---|---|---|---|")
    for size in ("64B", "1024B", "16384B"):
        for prealloc, kind in (("none", "append"), ("fallocate", "fallocate"), ("zero", "zeroed")):
            for policy in ("always", "everysec", "no"):
                raw_name = "raw-pwrite-fdatasync" if policy == "always" else "raw-pwrite"
                raw = r.get(f"append/{size}/{raw_name}/{kind}")
                for backend in ("pwrite", "uring", "mmap"):
                    eng = r.get(f"append/{size}/{policy}/{backend}/{prealloc}")
                    if eng is None:
                        continue
                    q = ratio(eng, raw)
                    print(f"| {size} | {prealloc} | {policy}/{backend} | {fmt(eng)} | {fmt(raw)} ({raw_name}) | {'n/a' if q is None else f'{q:.2f}x'} |")
    print("\n## Many writers, 64 B records (prealloc zero)\n")
    print("| policy/backend | 1 writer | 8 writers | 32 writers | 32w / 1w | 8w / off 8w |")
    print("|---|---|---|---|---|---|")
    off8 = r.get("writers/64B/off/8")
    for policy in ("always", "everysec", "no", "off"):
        for backend in (("pwrite", "uring", "mmap") if policy != "off" else ("",)):
            name = f"{policy}/{backend}" if backend else policy
            w = [r.get(f"writers/64B/{name}/{n}") for n in (1, 8, 32)]
            g = ratio(w[2], w[0])
            o = ratio(w[1], off8)
            print(f"| {name} | {fmt(w[0])} | {fmt(w[1])} | {fmt(w[2])} | {'n/a' if g is None else f'{g:.1f}x'} | {'n/a' if o is None else f'{o:.2f}x'} |")
    rep = r.get("replay/100MB-1KiB-records")
    if rep:
        print(f"\n## Replay\n\n{rep / 1e6:,.0f} MB/s of log (100 MB, 1 KiB records)")
    snapshot_load_table()


main()
