#!/usr/bin/env python3
"""End-to-end figures for real `receptor` processes on loopback (issue: the receptor binary).

  * ping round trip over 3 hops (A-B-C-D line over TCP), as measured by the node, via receptorctl
  * idle RSS of a node with one peer and a control socket, after it settles
  * start-up time until the control socket answers with its greeting

Usage: python3 benches/e2e/node_bench.py [--receptor PATH] [--receptorctl PATH]
Builds nothing: run `cargo build --release -p receptor-cli` first (the default PATH is
target/release/receptor). Binds only 127.0.0.1 and a temp dir; stops every process it starts.
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e_nodes import Node, free_port  # noqa: E402 (beside this script)


def ctl(receptorctl, sock, *args):
    return subprocess.run([receptorctl, "--socket", sock] + list(args),
                          capture_output=True, text=True, timeout=60)


def duration_ms(text):
    m = re.match(r"([0-9.]+)(ns|µs|us|ms|s)", text)
    v, u = float(m.group(1)), m.group(2)
    return v * {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}[u]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--receptorctl", default=os.path.join(ROOT, ".venv/bin/receptorctl"))
    ap.add_argument("--pings", type=int, default=50)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="receptor-bench-")
    nodes = []
    try:
        # start-up: median of 10 fresh nodes
        starts = []
        for i in range(10):
            n = Node(a.receptor, tmp, f"s{i}", ["--tcp-listener", "bindaddr=127.0.0.1", f"port={free_port()}"])
            starts.append(n.wait_greeting())
            n.stop()
        # line A-B-C-D
        ports = [free_port() for _ in range(3)]
        names = ["A", "B", "C", "D"]
        for i, name in enumerate(names):
            args = []
            if i < 3:
                args += ["--tcp-listener", "bindaddr=127.0.0.1", f"port={ports[i]}"]
            if i > 0:
                args += ["--tcp-peer", f"address=127.0.0.1:{ports[i-1]}"]
            nodes.append(Node(a.receptor, tmp, name, args))
        for n in nodes:
            n.wait_greeting()
        end = time.time() + 15
        while time.time() < end:
            st = json.loads(ctl(a.receptorctl, nodes[0].sock, "status", "--json").stdout)
            if "D" in (st.get("RoutingTable") or {}):
                break
            time.sleep(0.1)
        out = ctl(a.receptorctl, nodes[0].sock, "ping", "D", "--count", str(a.pings), "--delay", "0.01").stdout
        rtts = [duration_ms(m) for m in re.findall(r"Reply from D in (\S+)", out)]
        time.sleep(5)
        rss = [n.rss_kib() for n in nodes]
        result = {
            "startup_to_greeting_ms_median": round(statistics.median(starts) * 1000, 2),
            "startup_to_greeting_ms_max": round(max(starts) * 1000, 2),
            "ping_3_hops_ms_median": round(statistics.median(rtts), 3) if rtts else None,
            "ping_3_hops_ms_p90": round(sorted(rtts)[int(len(rtts) * 0.9) - 1], 3) if rtts else None,
            "pings_answered": f"{len(rtts)}/{a.pings}",
            "idle_rss_mib": {n: round(r / 1024, 2) for n, r in zip(names, rss)},
        }
        print(json.dumps(result, indent=1))
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
