#!/usr/bin/env python3
"""End-to-end figures for units of work through the real receptorctl (issue: units of work).

The units run on node C of a line A -tcp- B -tcp- C and are submitted on A (remote work, two
hops; the default), or run on A itself (`--local`). Two clients:

  * cli: one `receptorctl work submit -f --rm` process per unit, as a user types it. Python
    and receptorctl take about 0.25 s to start here, which bounds these figures.
  * lib: receptorctl's own client class (`ReceptorControl`) in this process, doing what
    `work submit -f --rm` does (submit with payload, read the results to their end, `work
    status`, `work release`), without starting an interpreter per unit.

Figures: echo units per second, sequential and 50 at once, for both clients; the time of one
echo unit (lib, median and best); and a unit printing `--mib` MiB, through the cli (which
reads results in 256-byte lines) and the lib (large reads). The big output is random bytes
(without newlines) that must come back exactly: the cli's stdout is the output followed by
the `(<id>, released)` line that `--rm` prints, and nothing else.

Then (issue 13's target scenario) `--seq-units` units (200) at once, each running `seq 1 20000`
(108 894 bytes of output), submitted through the lib in one process with one thread per unit;
every output is checked. Figures: units per second, node CPU per unit (all three nodes with
their commands), and the peak RSS (VmHWM) of A, the submitting node. `--only-seq` runs this
scenario alone.

Usage: python3 benches/e2e/work_bench.py [--local] [--units N] [--mib N] [--receptor PATH]
       [--seq-units N] [--only-seq]
Needs `cargo build --release -p receptor-cli` and .venv/bin/receptorctl (made by .ci/run);
re-runs itself with .venv/bin/python to import receptorctl. Binds only 127.0.0.1 and a temp
dir; stops every process it starts.
"""
import argparse, concurrent.futures, hashlib, io, json, os, re, shutil, socket, statistics
import resource, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e_nodes import cpu_seconds, free_port, receptor_control  # noqa: E402 (beside this script)

ReceptorControl = receptor_control()


def node_cpu(pids):
    """User+system CPU of the processes and their reaped children (supervisors, commands)."""
    return sum(cpu_seconds(p, with_children=True) for p in pids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--receptorctl", default=os.path.join(ROOT, ".venv/bin/receptorctl"))
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--seq-units", type=int, default=200)
    ap.add_argument("--only-seq", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="receptor-workbench-")
    procs = []
    try:
        # Random bytes without newlines: any lost, doubled or reordered byte shows.
        data = os.urandom(a.mib << 20).replace(b"\n", b"x")
        data_path = os.path.join(tmp, "big.bin")
        with open(data_path, "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        ports = [free_port(), free_port()]
        work = ["--work-command", "worktype=echo", "command=cat",
                "--work-command", "worktype=big", "command=cat", f"params={data_path}",
                "--work-command", "worktype=seq", "command=seq", "params=1 20000"]
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

        def cli_one(i):
            r = ctl("work", "submit", "--node", target, "echo", "--payload-literal", f"hello {i}", "-f", "--rm")
            assert r.returncode == 0 and r.stdout.startswith(f"hello {i}\n".encode()), (r.stdout, r.stderr)

        def lib_run(worktype, payload, read_size):
            """What `work submit -f --rm` does; returns the unit's output."""
            rc = ReceptorControl(sock)
            work = rc.submit_work(worktype, payload, node=target)
            unit = work["unitid"]
            rc = ReceptorControl(sock)
            f = rc.get_work_results(unit)
            out = io.BytesIO()
            while True:
                b = f.read(read_size) if read_size else f.readline(256)
                if not b:
                    break
                out.write(b)
            f.close()
            rc = ReceptorControl(sock)
            st = rc.simple_command(f"work status {unit}")
            rc.close()
            rc = ReceptorControl(sock)
            rel = rc.simple_command(f"work release {unit}")
            rc.close()
            assert st["State"] == 2 and rel.get("released") == unit, (st, rel)
            return out.getvalue()

        def lib_one(i):
            out = lib_run("echo", f"hello {i}\n".encode(), 65536)
            assert out == f"hello {i}\n".encode(), out

        node_pids = [p.pid for p in procs]
        cpu = {}

        def rate(fn, n, parallel, name=None):
            c = node_cpu(node_pids)
            t = time.perf_counter()
            if parallel == 1:
                for i in range(n):
                    fn(i)
            else:
                with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
                    list(ex.map(fn, range(n)))
            r = n / (time.perf_counter() - t)
            if name:
                cpu[name] = round((node_cpu(node_pids) - c) / n * 1000, 1)
            return r

        res = {"where": "local" if a.local else "remote (A -tcp- B -tcp- C, units on C)"}
        lib_one(-1)  # warm up: the first dial sets up the path
        if a.seq_units:
            res.update(seq_scenario(a.seq_units, lib_run, node_pids, procs[0].pid))
        if a.only_seq:
            print(json.dumps(res, indent=1))
            return 0
        lat = []
        for i in range(a.units):
            t = time.perf_counter()
            lib_one(i)
            lat.append(time.perf_counter() - t)
        res["lib_one_unit_ms_median"] = round(statistics.median(lat) * 1000, 1)
        res["lib_one_unit_ms_best"] = round(min(lat) * 1000, 1)
        res["lib_units_per_s_sequential"] = round(rate(lib_one, a.units, 1, "lib_seq"), 2)
        res[f"lib_units_per_s_{a.concurrent}_concurrent"] = round(rate(lib_one, a.concurrent, a.concurrent, "lib_conc"), 2)
        res["cli_units_per_s_sequential"] = round(rate(cli_one, a.units, 1, "cli_seq"), 2)
        res[f"cli_units_per_s_{a.concurrent}_concurrent"] = round(rate(cli_one, a.concurrent, a.concurrent, "cli_conc"), 2)
        # CPU of the receptor processes (with their supervisors and commands) per unit.
        res["node_cpu_ms_per_unit"] = cpu

        # Big output through the cli: the bytes, then `--rm`'s `(<id>, released)` line.
        c = node_cpu(node_pids)
        t = time.perf_counter()
        r = subprocess.run([a.receptorctl, "--socket", sock, "work", "submit", "--node", target, "big",
                            "--no-payload", "-f", "--rm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        res[f"cli_output_{a.mib}MiB_seconds"] = round(time.perf_counter() - t, 2)
        res["cli_output_node_cpu_s"] = round(node_cpu(node_pids) - c, 2)
        out = r.stdout
        tail = out[len(data):]
        res["cli_output_exact"] = (r.returncode == 0 and len(out) >= len(data)
                                   and hashlib.sha256(out[:len(data)]).hexdigest() == digest
                                   and re.fullmatch(rb"\([A-Za-z0-9]+, released\)\n", tail) is not None)
        if not res["cli_output_exact"]:
            res["cli_output_detail"] = {"rc": r.returncode, "len": len(out), "want": len(data),
                                        "tail": tail[-80:].decode(errors="replace"),
                                        "stderr": r.stderr[-300:].decode(errors="replace")}
        # Big output through the lib with large reads: what our nodes can do.
        c = node_cpu(node_pids)
        t = time.perf_counter()
        out = lib_run("big", b"", 1 << 20)
        res[f"lib_output_{a.mib}MiB_seconds"] = round(time.perf_counter() - t, 2)
        res["lib_output_node_cpu_s"] = round(node_cpu(node_pids) - c, 2)
        res["lib_output_exact"] = hashlib.sha256(out).hexdigest() == digest
        print(json.dumps(res, indent=1))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


SEQ_OUTPUT = "".join(f"{i}\n" for i in range(1, 20001)).encode()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def seq_scenario(n, lib_run, node_pids, submitter_pid):
    """n units of `seq 1 20000` at once, each output checked."""
    durations = []

    def one(i):
        t0 = time.perf_counter()
        out = lib_run("seq", b"", 65536)
        durations.append(time.perf_counter() - t0)
        return out == SEQ_OUTPUT
    c = [node_cpu([p]) for p in node_pids]
    own = [cpu_seconds(p) for p in node_pids]
    t = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        ok = list(ex.map(one, range(n)))
    secs = time.perf_counter() - t
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime) / n * 1000
    per_node = [(node_cpu([p]) - c0) / n * 1000 for p, c0 in zip(node_pids, c)]
    # The node process alone, without its supervisors and commands.
    per_node_own = [(cpu_seconds(p) - c0) / n * 1000 for p, c0 in zip(node_pids, own)]
    return {
        f"seq_{n}_concurrent_units_per_s": round(n / secs, 2),
        f"seq_{n}_node_cpu_ms_per_unit": round(sum(per_node), 1),
        f"seq_{n}_node_cpu_ms_per_unit_by_node": {k: round(v, 1) for k, v in zip("ABC", per_node)},
        f"seq_{n}_node_process_cpu_ms_per_unit": {k: round(v, 1) for k, v in zip("ABC", per_node_own)},
        f"seq_{n}_outputs_exact": sum(ok),
        f"seq_{n}_client_cpu_ms_per_unit": round(client_cpu, 1),
        f"seq_{n}_wall_s": round(secs, 2),
        f"seq_{n}_unit_seconds_p50_p90_max": [round(x, 2) for x in (
            statistics.median(durations), sorted(durations)[int(len(durations) * 0.9)], max(durations))],
        "submitter_peak_rss_kib": peak_rss_kib(submitter_pid),
    }


if __name__ == "__main__":
    sys.exit(main())
