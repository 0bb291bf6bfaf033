#!/usr/bin/env python3
"""Floods one `receptor` node and prints its memory (VmRSS) and open fds before, during and
after each flood (issues 16 and 17: memory bounded, and given back once a flood is over).

  a. connections: N half-open TCP connections (connected, silent), N WebSocket connections
     (half of them upgraded and then silent, half stopped in the middle of the upgrade
     request) and 300 established links (fake peers speaking the wire protocol), then all
     of them closed;
  b. one peer announces 50,000 nodes (a routing update from each) and 50,000 service
     adverts, then leaves; figures until the forget time (2 min) has passed;
  c. 20 control connections each sending 10 MB without a newline.

Target: RSS after each flood (30 s after it for a and c; after the forget time for b) within
2x the idle baseline. "peak" is the largest RSS sampled (every 20 ms) during the flood.

Usage: python3 benches/e2e/flood_bench.py [--receptor PATH] [--half-open N] [--links N]
       [--nodes N] [--ads N] [--control N] [--control-mb N] [--forget-wait S] [--only a,b,c]
Needs `cargo build --release -p receptor-cli`. Binds only 127.0.0.1 and a temp dir; stops
every process it starts.
"""
import argparse, datetime, json, os, shutil, socket, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e_nodes import Node, free_port  # noqa: E402 (beside this script)
from wire_peer import Drain, Peer, frame, route_update, service_ad  # noqa: E402

NODE = "N"


class Sampler(threading.Thread):
    """Samples the node's RSS every 20 ms; `peak()` is the largest since the last `reset()`."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node, self.max, self.done = node, 0, False
        self.start()

    def run(self):
        while not self.done:
            try:
                self.max = max(self.max, self.node.rss_kib())
            except OSError:
                return
            time.sleep(0.02)

    def reset(self):
        self.max = self.node.rss_kib()

    def peak(self):
        return max(self.max, self.node.rss_kib())


def fds(node):
    return len(os.listdir(f"/proc/{node.p.pid}/fd"))


class Report:
    def __init__(self, node, baseline):
        self.node, self.baseline, self.rows, self.afters = node, baseline, [], []

    def row(self, what, rss=None, is_after=False):
        rss = self.node.rss_kib() if rss is None else rss
        line = f"{what:<58} {rss / 1024:8.1f} MiB {rss / self.baseline:6.2f}x  fds {fds(self.node):5d}"
        print(line, flush=True)
        self.rows.append(line)
        if is_after:
            self.afters.append((what, rss))


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def ws_upgrade_request(port, complete):
    req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    return req if complete else req[:60]


def flood_connections(a, node, rep, sampler, tcp_port, ws_port):
    sampler.reset()
    t0 = time.time()
    socks = []
    for _ in range(a.half_open):
        socks.append(socket.create_connection(("127.0.0.1", tcp_port)))
    for i in range(a.half_open):
        s = socket.create_connection(("127.0.0.1", ws_port))
        s.sendall(ws_upgrade_request(ws_port, complete=i % 2 == 0))
        socks.append(s)
    # The upgraded half: wait for each 101 answer, so the sessions are really open.
    for i, s in enumerate(socks[a.half_open::2]):
        s.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        if not got.startswith(b"HTTP/1.1 101"):
            print(f"  upgrade {i} answered {got[:40]!r}", file=sys.stderr)
    rep.row(f"a: {a.half_open} half-open TCP + {a.half_open} WebSocket open ({time.time() - t0:.1f} s)")
    drain = Drain()
    peers = []
    for i in range(a.links):
        p = Peer(("127.0.0.1", tcp_port), f"L{i:04d}", NODE)
        drain.add(p)
        peers.append(p)
    ok = wait_for(lambda: len((node.status() or {}).get("Connections") or []) >= a.links, 60, 0.5)
    rep.row(f"a: + {a.links} established links ({'all up' if ok else 'NOT all up'})")
    rep.row("a: peak during", sampler.peak())
    for s in socks:
        s.close()
    drain.remove_all()
    drain.stop()
    for p in peers:
        p.close()
    t_closed = time.time()
    wait_for(lambda: len((node.status() or {}).get("Connections") or []) == 0, 30, 0.5)
    for at in (5, 30):
        time.sleep(max(0, t_closed + at - time.time()))
        rep.row(f"a: {at} s after all closed", is_after=at == 30)


def flood_adverts(a, node, rep, sampler, tcp_port):
    sampler.reset()
    drain = Drain()
    p = Peer(("127.0.0.1", tcp_port), "P", NODE)
    drain.add(p)
    wait_for(lambda: "P" in ((node.status() or {}).get("RoutingTable") or {}), 20)
    t0 = time.time()
    epoch = p.epoch
    batch = []
    for i in range(a.nodes):
        batch.append(frame(route_update(f"n{i:05d}", "P", {"P": 1}, f"u{i:07d}", epoch, 1)))
        if len(batch) == 1000:
            p.send(b"".join(batch))
            batch = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for i in range(a.ads):
        batch.append(frame(service_ad(f"n{i % max(a.nodes, 1):05d}", f"s{i}", now)))
        if len(batch) == 1000:
            p.send(b"".join(batch))
            batch = []
    p.send(b"".join(batch))
    # Nothing answers a routing update or an advert: wait for the RSS to settle instead.
    last, stable = 0, 0
    while stable < 3:
        time.sleep(1)
        r = node.rss_kib()
        stable = stable + 1 if abs(r - last) < 256 else 0
        last = r
    st = node.status() or {}
    known = len(st.get("KnownConnectionCosts") or {})
    ads = len(st.get("Advertisements") or [])
    rep.row(f"b: {a.nodes} nodes + {a.ads} ads sent ({time.time() - t0:.1f} s); node keeps {known} nodes, {ads} ads")
    rep.row("b: peak during", sampler.peak())
    drain.remove_all()
    drain.stop()
    p.close()
    t_left = time.time()
    for at in sorted({5, 30, 60, a.forget_wait}):
        time.sleep(max(0, t_left + at - time.time()))
        st = node.status() or {}
        known = len(st.get("KnownConnectionCosts") or {})
        ads = len(st.get("Advertisements") or [])
        rep.row(f"b: {at} s after the peer left ({known} nodes, {ads} ads)",
                is_after=at == a.forget_wait)


def flood_control(a, node, rep, sampler):
    sampler.reset()
    sent = [0] * a.control
    chunk = b"x" * (1 << 16)

    def one(i):
        s = socket.socket(socket.AF_UNIX)
        s.connect(node.sock)
        s.recv(4096)  # greeting
        try:
            while sent[i] < a.control_mb * 1_000_000:
                sent[i] += s.send(chunk)
        except OSError:
            pass
        s.close()

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.control)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mb = sum(sent) / 1e6
    rep.row(f"c: {a.control} control lines of {a.control_mb} MB: {mb:.0f} MB taken ({time.time() - t0:.1f} s)")
    rep.row("c: peak during", sampler.peak())
    t_done = time.time()
    for at in (5, 30):
        time.sleep(max(0, t_done + at - time.time()))
        rep.row(f"c: {at} s after", is_after=at == 30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--half-open", type=int, default=2000)
    ap.add_argument("--links", type=int, default=300)
    ap.add_argument("--nodes", type=int, default=50_000)
    ap.add_argument("--ads", type=int, default=50_000)
    ap.add_argument("--control", type=int, default=20)
    ap.add_argument("--control-mb", type=int, default=10)
    ap.add_argument("--forget-wait", type=int, default=150, help="seconds after the peer left (forget time 120 s)")
    ap.add_argument("--only", default="a,b,c")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="receptor-flood-")
    node = None
    try:
        tcp_port, ws_port = free_port(), free_port()
        node = Node(a.receptor, tmp, NODE, [
            "--tcp-listener", "bindaddr=127.0.0.1", f"port={tcp_port}",
            "--ws-listener", "bindaddr=127.0.0.1", f"port={ws_port}"])
        node.wait_greeting()
        time.sleep(3)
        baseline = node.rss_kib()
        rep = Report(node, baseline)
        sampler = Sampler(node)
        print(f"{'':<58} {'VmRSS':>12} {'/base':>7}")
        rep.row("idle baseline")
        if "a" in a.only:
            flood_connections(a, node, rep, sampler, tcp_port, ws_port)
        if "b" in a.only:
            flood_adverts(a, node, rep, sampler, tcp_port)
        if "c" in a.only:
            flood_control(a, node, rep, sampler)
        sampler.done = True
        assert node.p.poll() is None, "the node exited"
        worst = max(rss for _, rss in rep.afters)
        verdict = "within" if worst <= 2 * baseline else "NOT within"
        print(f"worst after a flood: {worst / 1024:.1f} MiB = {worst / baseline:.2f}x baseline: {verdict} 2x")
    finally:
        if node:
            node.stop()
        if os.environ.get("KEEP_TMP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
