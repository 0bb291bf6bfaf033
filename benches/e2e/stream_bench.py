#!/usr/bin/env python3
"""End-to-end mesh stream figures for real `receptor` processes on loopback (issue: proxies).

A line A -tcp- B -tcp- C; a `tcp-server` on A forwards to a `tcp-client` service on C in front
of a local server run by this script, so every byte crosses two mesh hops (QUIC over the
mesh, TCP backends between the nodes) and is proxied at both ends.

  * throughput one way (client -> far server, and far server -> client), MiB/s, through the
    mesh and over raw loopback TCP in the same run, runs of the two alternated, and the
    median ratio of neighbouring runs
  * stream setup: time until a new connection through the mesh gets its first byte back
  * memory per open stream: RSS growth of A+B+C with N idle open streams, divided by N
  * CPU per MiB of each node (and of the client and server, raw and meshed), so the figures
    mean something on a busy machine too

Usage: python3 benches/e2e/stream_bench.py [--receptor PATH] [--mib N] [--streams N]
Builds nothing: run `cargo build --release -p receptor-cli` first (the default PATH is
target/release/receptor). Binds only 127.0.0.1 and a temp dir; stops every process it starts.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e_nodes import Node, cpu_seconds, free_port  # noqa: E402 (beside this script)
CHUNK = 256 * 1024

# The far server, run as its own process so it does not share the client's GIL. The first byte
# of a connection picks the mode: 'S' sink (read to EOF, answer the byte count), 'D' download
# (8-byte big-endian length, then that many bytes, then close), 'I' idle (answer 'k', wait).
SERVER = r"""
import socket, sys, threading
CHUNK = 256 * 1024
def handle(c):
    try:
        mode = c.recv(1)
        if mode == b"S":
            n = 0
            while True:
                d = c.recv(CHUNK)
                if not d:
                    break
                n += len(d)
            c.sendall(b"%d\n" % n)
        elif mode == b"D":
            hdr = b""
            while len(hdr) < 8:
                d = c.recv(8 - len(hdr))
                if not d:
                    return
                hdr += d
            left = int.from_bytes(hdr, "big")
            buf = bytes(CHUNK)
            mv = memoryview(buf)
            while left > 0:
                k = min(left, CHUNK)
                c.sendall(mv[:k])
                left -= k
            c.shutdown(socket.SHUT_WR)
            while c.recv(CHUNK):
                pass
        elif mode == b"I":
            c.sendall(b"k")
            while c.recv(CHUNK):
                pass
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1024)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"""


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def upload(port, total):
    """Client -> far server; returns MiB/s (timed until the server's byte count arrives)."""
    buf = memoryview(bytes(CHUNK))
    s = connect(port)
    t0 = time.perf_counter()
    s.sendall(b"S")
    left = total
    while left > 0:
        k = min(left, CHUNK)
        s.sendall(buf[:k])
        left -= k
    s.shutdown(socket.SHUT_WR)
    line = s.makefile("rb").readline()
    dt = time.perf_counter() - t0
    s.close()
    if int(line) != total:
        raise RuntimeError(f"sink got {line!r}, sent {total}")
    return total / dt / 2**20


def download(port, total):
    """Far server -> client; returns MiB/s."""
    s = connect(port)
    t0 = time.perf_counter()
    s.sendall(b"D" + total.to_bytes(8, "big"))
    got = 0
    buf = bytearray(CHUNK)
    while True:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    dt = time.perf_counter() - t0
    s.close()
    if got != total:
        raise RuntimeError(f"got {got} of {total}")
    return total / dt / 2**20


def paired(f, ports, total, runs, procs):
    """Alternates runs over raw loopback and through the mesh, `runs` of each, in turn first.

    The host's speed drifts by tens of percent within minutes, so a ratio of two bests taken
    a minute apart says more about the minute than about the mesh. Returns the best MiB/s of
    each path, the median of the mesh/raw ratios of neighbouring runs, and the CPU
    milliseconds per MiB that each of `procs[path]` spent over that path's runs."""
    rates = {path: [] for path in ports}
    cpu = {path: [0.0] * len(procs[path]) for path in ports}
    for i in range(runs):
        for path in (["raw", "mesh"] if i % 2 == 0 else ["mesh", "raw"]):
            before = [p.cpu_s() for p in procs[path]]
            rates[path].append(f(ports[path], total))
            cpu[path] = [c + p.cpu_s() - b for c, p, b in zip(cpu[path], procs[path], before)]
    mib = runs * total / 2**20
    ratio = statistics.median(m / r for r, m in zip(rates["raw"], rates["mesh"]))
    cost = {path: [round(c * 1000 / mib, 2) for c in cpu[path]] for path in ports}
    return max(rates["raw"]), max(rates["mesh"]), ratio, cost


class Pid:
    def __init__(self, name, pid):
        self.name, self.pid = name, pid

    def cpu_s(self):
        return cpu_seconds(self.pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--mib", type=int, default=256, help="MiB per throughput run")
    ap.add_argument("--runs", type=int, default=5,
                    help="throughput runs per path and direction, raw and mesh alternated")
    ap.add_argument("--streams", type=int, default=200, help="idle streams for the memory figure")
    a = ap.parse_args()
    total = a.mib * 2**20
    tmp = tempfile.mkdtemp(prefix="receptor-stream-bench-")
    nodes, server = [], None
    try:
        server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
        sport = int(server.stdout.readline())
        bport, proxy = free_port(), free_port()
        b = Node(a.receptor, tmp, "B", ["--tcp-listener", "bindaddr=127.0.0.1", f"port={bport}"])
        peer = ["--tcp-peer", f"address=127.0.0.1:{bport}"]
        an = Node(a.receptor, tmp, "A", peer + [
            "--tcp-server", f"port={proxy}", "bindaddr=127.0.0.1", "remotenode=C",
            "remoteservice=bench"])
        cn = Node(a.receptor, tmp, "C", peer + [
            "--tcp-client", "service=bench", f"address=127.0.0.1:{sport}"])
        nodes = [an, b, cn]
        end = time.time() + 20
        while time.time() < end:
            st = an.status()
            ads = (st or {}).get("Advertisements") or []
            if any(ad["NodeID"] == "C" and ad["Service"] == "bench" for ad in ads):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("C's service never reached A")
        # Memory first, on fresh nodes: later the allocators hold freed memory that new
        # streams would reuse without growing RSS.
        time.sleep(1)
        before = [n.rss_kib() for n in nodes]
        held = []
        for _ in range(a.streams):
            s = connect(proxy)
            s.sendall(b"I")
            if s.recv(1) != b"k":
                raise RuntimeError("idle stream not answered")
            held.append(s)
        time.sleep(3)
        after = [n.rss_kib() for n in nodes]
        for s in held:
            s.close()
        # Warm up both paths.
        upload(proxy, 2**20)
        upload(sport, 2**20)

        me = Pid("client", os.getpid())
        far = Pid("server", server.pid)
        ports = {"raw": sport, "mesh": proxy}
        procs = {"raw": [me, far], "mesh": nodes + [me, far]}
        raw_up, mesh_up, ratio_up, cost_up = paired(upload, ports, total, a.runs, procs)
        raw_down, mesh_down, ratio_down, cost_down = paired(download, ports, total, a.runs, procs)
        up_cpu, down_cpu = cost_up["mesh"], cost_down["mesh"]
        raw_up_cpu, raw_down_cpu = cost_up["raw"], cost_down["raw"]

        setups = []
        for _ in range(20):
            t0 = time.perf_counter()
            s = connect(proxy)
            s.sendall(b"I")
            if s.recv(1) != b"k":
                raise RuntimeError("no answer through the mesh")
            setups.append(time.perf_counter() - t0)
            s.close()

        per_stream = {n.name: round((y - x) / a.streams, 1) for n, x, y in zip(nodes, before, after)}
        result = {
            "mib_per_run": a.mib,
            "raw_loopback_mib_s": {"up": round(raw_up, 1), "down": round(raw_down, 1)},
            "mesh_2_hops_mib_s": {"up": round(mesh_up, 1), "down": round(mesh_down, 1)},
            # Median over neighbouring runs (see `paired`), not a ratio of the bests above.
            "mesh_vs_raw_pct": {"up": round(100 * ratio_up, 1),
                                "down": round(100 * ratio_down, 1)},
            # CPU each process spent per MiB moved (all runs): the mesh's cost, whatever the
            # load on the machine; 1000 / the busiest node's figure is what that node could
            # carry with a core of its own.
            "cpu_ms_per_mib_up": dict(zip(["A", "B", "C", "client", "server"], up_cpu)),
            "cpu_ms_per_mib_down": dict(zip(["A", "B", "C", "client", "server"], down_cpu)),
            "cpu_ms_per_mib_raw": {"up": dict(zip(["client", "server"], raw_up_cpu)),
                                   "down": dict(zip(["client", "server"], raw_down_cpu))},
            "one_core_per_node_ceiling_mib_s": {
                "up": round(1000 / max(up_cpu[:3]), 1),
                "down": round(1000 / max(down_cpu[:3]), 1)},
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "stream_setup_ms_median": round(statistics.median(setups) * 1000, 2),
            "stream_setup_ms_max": round(max(setups) * 1000, 2),
            "idle_streams": a.streams,
            "rss_kib_before": dict(zip("ABC", before)),
            "rss_kib_per_open_stream": per_stream,
            "rss_kib_per_open_stream_total": round((sum(after) - sum(before)) / a.streams, 1),
        }
        print(json.dumps(result, indent=1))
    finally:
        for n in nodes:
            n.stop()
        if server:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
