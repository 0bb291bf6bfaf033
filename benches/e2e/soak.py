#!/usr/bin/env python3
"""Soak: remote units two hops away while the middle of the line keeps failing (issue 16.5).

Line A -tcp- B -tcp- C (B dials A, C dials B). `--units` echo units (`cat`), each with its own
random payload of `--payload-kib` KiB, are submitted on A to run on C, through receptorctl's
own client class. Meanwhile B is killed (SIGKILL) and started again: up `--up` seconds, down
`--down` seconds, so both of its links break in the middle of payload and result transfers.
Once every unit has finished on A (or `--deadline` s have passed), B stays up and the script
reads every unit's results on A and compares them with its payload.

Prints: bytes lost (results shorter than their payloads), bytes doubled (longer), units whose
results differ from their payloads in any way, stuck units (not finished in time), failed units, the number of B restarts,
and the time it took. All but the time must be 0.

Usage: python3 benches/e2e/soak.py [--units N] [--payload-kib N] [--up S] [--down S]
       [--deadline S] [--receptor PATH]
Needs `cargo build --release -p receptor-cli` and .venv (receptorctl); re-runs itself with
.venv/bin/python to import receptorctl. Binds only 127.0.0.1 and a temp dir; stops every
process it starts.
"""
import argparse, concurrent.futures, os, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e_nodes import free_port, receptor_control  # noqa: E402 (beside this script)

ReceptorControl = receptor_control()


class Line:
    """The three node processes; B can be killed and started again."""

    def __init__(self, receptor, tmp):
        self.receptor, self.tmp = receptor, tmp
        self.ports = [free_port(), free_port()]
        self.procs = {}
        self.restarts = 0
        for n in "ACB":
            self.start(n)

    def args(self, n):
        args = [self.receptor, "--node", f"id={n}", "datadir=" + os.path.join(self.tmp, "data-" + n),
                "--control-service", "filename=" + self.sock(n)]
        i = "ABC".index(n)
        if i < 2:
            args += ["--tcp-listener", "bindaddr=127.0.0.1", f"port={self.ports[i]}"]
        if i > 0:
            args += ["--tcp-peer", f"address=127.0.0.1:{self.ports[i - 1]}"]
        if n == "C":
            args += ["--work-command", "worktype=echo", "command=cat"]
        return args

    def sock(self, n):
        return os.path.join(self.tmp, n + ".sock")

    def start(self, n):
        log = open(os.path.join(self.tmp, n + ".log"), "a")
        self.procs[n] = subprocess.Popen(self.args(n), stdout=log, stderr=log)

    def kill_b(self):
        self.procs["B"].send_signal(signal.SIGKILL)
        self.procs["B"].wait()

    def restart_b(self):
        self.start("B")
        self.restarts += 1

    def stop(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def command(sock, cmd):
    rc = ReceptorControl(sock)
    try:
        return rc.simple_command(cmd)
    finally:
        rc.close()


def wait_ready(line, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            st = command(line.sock("A"), "status")
            if "C" in (st.get("RoutingTable") or {}) and any(
                    ad["NodeID"] == "C" and ad.get("WorkCommands") for ad in st.get("Advertisements") or []):
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise RuntimeError("C's work commands never reached A")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptor", default=os.path.join(ROOT, "target/release/receptor"))
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--payload-kib", type=int, default=256)
    ap.add_argument("--up", type=float, default=3.0, help="seconds B stays up in each flap")
    ap.add_argument("--down", type=float, default=1.0, help="seconds B stays down in each flap")
    ap.add_argument("--deadline", type=float, default=1800, help="seconds for all units to finish")
    ap.add_argument("--parallel", type=int, default=8, help="submissions at once")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="receptor-soak-")
    line = None
    flapping = threading.Event()
    flapper = None
    try:
        line = Line(a.receptor, tmp)
        wait_ready(line)
        sock_a = line.sock("A")
        payloads = [os.urandom(a.payload_kib << 10) for _ in range(a.units)]

        def flap():
            while _sleep_while(flapping, a.up):
                line.kill_b()
                time.sleep(a.down)
                line.restart_b()

        t0 = time.time()
        flapping.set()
        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()

        def submit(i):
            # The submission itself goes to A, which is always up; A carries it to C.
            for _ in range(100):
                try:
                    rc = ReceptorControl(sock_a)
                    r = rc.submit_work("echo", payloads[i], node="C")
                    rc.close()
                    return r["unitid"]
                except Exception as e:  # noqa: BLE001 (reported, then tried again)
                    last = e
                    time.sleep(0.5)
            raise RuntimeError(f"unit {i} not submitted: {last}")

        with concurrent.futures.ThreadPoolExecutor(a.parallel) as ex:
            units = list(ex.map(submit, range(a.units)))
        t_submitted = time.time() - t0
        print(f"{a.units} units submitted in {t_submitted:.1f} s; B restarted {line.restarts} times so far", flush=True)

        states = {}
        end = t0 + a.deadline
        last_print = 0
        while time.time() < end:
            listing = command(sock_a, "work list")
            states = {u: listing.get(u, {}).get("State") for u in units}
            done = sum(1 for s in states.values() if s in (2, 3))
            if time.time() - last_print > 10:
                print(f"  {time.time() - t0:6.0f} s: {done}/{a.units} finished, B restarts {line.restarts}", flush=True)
                last_print = time.time()
            if done == a.units:
                break
            time.sleep(2)
        t_done = time.time() - t0
        flapping.clear()
        flapper.join()
        if line.procs["B"].poll() is not None:
            line.restart_b()

        lost = doubled = failed = stuck = wrong = 0
        for i, u in enumerate(units):
            s = states.get(u)
            if s == 3:
                failed += 1
                if failed <= 5:
                    detail = command(sock_a, f"work status {u}").get("Detail")
                    print(f"  unit {u} failed: {detail}")
                continue
            if s != 2:
                stuck += 1
                continue
            rc = ReceptorControl(sock_a)
            f = rc.get_work_results(u)
            got = b""
            while True:
                b = f.read(1 << 16)
                if not b:
                    break
                got += b
            f.close()
            want = payloads[i]
            if got != want:
                wrong += 1
                lost += max(0, len(want) - len(got))
                doubled += max(0, len(got) - len(want))
        released = 0
        for u in units:
            try:
                if command(sock_a, f"work release {u}").get("released") == u:
                    released += 1
            except Exception:
                pass
        print(f"units: {a.units} of {a.payload_kib} KiB, 2 hops (A -tcp- B -tcp- C), B killed and "
              f"restarted every {a.up + a.down:.0f} s ({a.up:.0f} s up, {a.down:.0f} s down)")
        print(f"B restarts: {line.restarts}")
        print(f"time: {t_done:.1f} s until all finished (submissions took {t_submitted:.1f} s)")
        print(f"bytes lost: {lost}")
        print(f"bytes doubled: {doubled}")
        print(f"units with wrong results: {wrong}")
        print(f"stuck units: {stuck}")
        print(f"failed units: {failed}")
        print(f"released: {released}/{a.units}")
        ok = lost == doubled == wrong == stuck == failed == 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        flapping.clear()
        if line:
            line.stop()
        if os.environ.get("KEEP_TMP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _sleep_while(event, seconds):
    """Sleeps `seconds` in small steps; False when `event` was cleared meanwhile."""
    end = time.time() + seconds
    while time.time() < end:
        if not event.is_set():
            return False
        time.sleep(0.1)
    return True


if __name__ == "__main__":
    sys.exit(main())
