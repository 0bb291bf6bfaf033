#!/usr/bin/env python3
"""End-to-end figures for units of work through the real receptorctl (issue: units of work).

  * echo units per second through `receptorctl work submit -f`, sequential and 50 concurrent
  * output streaming: a unit printing 100 MiB, time for `work submit -f` to return it all

The units run on node C of a line A -tcp- B -tcp- C (`--remote`, the default) or on A itself
(`--local`). Usage: python3 benches/e2e/work_bench.py [--local] [--units N]
Needs `cargo build --release -p receptor-cli` and .venv/bin/receptorctl (made by .ci/run).
Binds only 127.0.0.1 and a temp dir; stops every process it starts.
"""
import argparse, concurrent.futures, json, os, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--receptorctl", default=os.path.join(ROOT, ".venv/bin/receptorctl"))
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--mib", type=int, default=100)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="receptor-workbench-")
    procs = []
    try:
        ports = [free_port(), free_port()]
        work = ["--work-command", "worktype=echo", "command=cat",
                "--work-command", "worktype=big", "command=head", f"params=-c {a.mib}M /dev/zero"]
        names = ["A", "B", "C"]
        for i, n in enumerate(names):
            args = [a.receptor, "--node", f"id={n}", "datadir=" + os.path.join(tmp, "data"),
                    "--control-service", "filename=" + os.path.join(tmp, n + ".sock")]
            if i < 2:
                args += ["--tcp-listener", "bindaddr=127.0.0.1", f"port={ports[i]}"]
            if i > 0:
                args += ["--tcp-peer", f"address=127.0.0.1:{ports[i-1]}"]
            if n == "C" or (a.local and n == "A"):
                args += work
            procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, n + ".log"), "w")))
        sock = os.path.join(tmp, "A.sock")
        target = "localhost" if a.local else "C"

        def ctl(*args, **kw):
            return subprocess.run([a.receptorctl, "--socket", sock] + list(args), capture_output=True, **kw)

        end = time.time() + 30
        while time.time() < end:
            try:
                st = json.loads(ctl("status", "--json").stdout)
                if a.local or "C" in (st.get("RoutingTable") or {}):
                    ads = st.get("Advertisements") or []
                    if a.local or any(x["NodeID"] == "C" and x.get("WorkCommands") for x in ads):
                        break
            except Exception:
                pass
            time.sleep(0.2)

        def one(i):
            r = ctl("work", "submit", "--node", target, "echo", "--payload-literal", f"hello {i}", "-f", "--rm")
            assert r.returncode == 0 and f"hello {i}".encode() in r.stdout, (r.stdout, r.stderr)

        t = time.perf_counter()
        for i in range(a.units):
            one(i)
        seq = a.units / (time.perf_counter() - t)
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(50) as ex:
            list(ex.map(one, range(50)))
        conc = 50 / (time.perf_counter() - t)
        t = time.perf_counter()
        r = subprocess.run([a.receptorctl, "--socket", sock, "work", "submit", "--node", target, "big",
                            "--no-payload", "-f", "--rm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        big = time.perf_counter() - t
        print(json.dumps({
            "where": "local" if a.local else "remote (2 hops)",
            "echo_units_per_s_sequential": round(seq, 2),
            "echo_units_per_s_50_concurrent": round(conc, 2),
            f"output_{a.mib}MiB_seconds": round(big, 2),
            "output_bytes_ok": len(r.stdout) == a.mib << 20,
        }, indent=1))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
