"""Shared by the end-to-end benchmark scripts: free ports, `receptor` node processes with a
control socket in a temp dir, and /proc readings of their memory and CPU."""
import json, os, socket, subprocess, sys, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid, with_children=False):
    """User + system CPU time of a process, in seconds; with its reaped children's if asked
    (work units' supervisors and commands)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = fields[11:15] if with_children else fields[11:13]
    return sum(int(x) for x in ticks) / os.sysconf("SC_CLK_TCK")


class Node:
    """A `receptor --node id=NAME --control-service filename=TMP/NAME.sock ARGS` process,
    logging to TMP/NAME.log."""

    def __init__(self, binary, tmp, name, args):
        self.name = name
        self.sock = os.path.join(tmp, name + ".sock")
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen([binary, "--node", "id=" + name,
                                   "--control-service", "filename=" + self.sock] + args,
                                  stdout=self.log, stderr=self.log)

    def wait_greeting(self, timeout=10):
        """Seconds from the start until the control socket greets."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                line = s.makefile("rb").readline()
                s.close()
                if line.startswith(b"Receptor Control"):
                    return time.perf_counter() - self.t0
            except OSError:
                time.sleep(0.0005)
        raise RuntimeError("no greeting from " + self.sock)

    def status(self):
        """The control service's `status` as JSON, or None."""
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(self.sock)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"status\n")
            st = json.loads(f.readline())
            s.close()
            return st
        except (OSError, ValueError):
            return None

    def rss_kib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def cpu_s(self):
        return cpu_seconds(self.p.pid)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()


def receptor_control():
    """receptorctl's client class; re-runs the calling script under the repo's .venv when the
    current Python lacks receptorctl (the scripts are run as `python3 benches/e2e/X.py`)."""
    try:
        from receptorctl.socket_interface import ReceptorControl
        return ReceptorControl
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        py = os.path.join(root, ".venv", "bin", "python")
        if os.path.exists(py) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.dirname(os.path.dirname(py))):
            os.execv(py, [py] + sys.argv)
        raise
