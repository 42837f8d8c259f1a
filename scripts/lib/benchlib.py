"""What the benchmark scripts share: a throwaway tgtd with a /dev/shm LUN of
random data on one or more portals, `riscsi bench` and `iscsi-perf` runs, NBD
servers under fio's nbd engine, CPU accounting, child-process hygiene and the
BENCHMARKS.md section writer."""

import ctypes
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RISCSI = ROOT / "target" / "release" / "riscsi"
GIB = 1 << 30


def prepare(script, tools):
    """Installs what is missing (scripts/install-deps), builds the release
    riscsi, and exits with a clear message if one of `tools` (commands) is
    still not on PATH."""
    try:
        subprocess.run([str(ROOT / "scripts" / "install-deps")], check=True)
    except subprocess.CalledProcessError as e:
        sys.exit(f"{script}: scripts/install-deps failed ({e.returncode}); install the tools it names by hand")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "riscsi-tools"], cwd=ROOT, check=True)
    require(script, tools)


def require(script, tools):
    """Exits naming the first command of `tools` that is not on PATH."""
    for tool in tools:
        if tool == "riscsi":
            if not os.access(RISCSI, os.X_OK):
                sys.exit(f"{script}: {RISCSI} not found (cargo build --release -p riscsi-tools)")
        elif not shutil.which(tool):
            sys.exit(f"{script}: {tool} not found (scripts/install-deps installs it)")


def exit_on_signals():
    """SIGTERM and SIGHUP unwind the script like Ctrl-C does, so every `with`
    and `finally` stops the children it started."""
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    # SIGKILL when the script dies, even by SIGKILL: no server outlives a run.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(args, **kw):
    """Popen for a long-lived child (target, server): in its own session, so a
    terminal's Ctrl-C reaches only the script, which then stops its children
    in order; killed by the kernel if the script itself dies."""
    return subprocess.Popen(args, start_new_session=True, preexec_fn=_child_setup, **kw)


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Sends `sig`, waits up to `timeout` seconds, then SIGKILL. Returns the
    exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def proc_cpu(pid):
    """User+system CPU-seconds of process `pid` so far, all its threads
    (/proc/PID/stat utime and stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Tgtd:
    """A private tgtd with one LUN of random data in /dev/shm, on `hosts`
    (127.0.0.1, 127.0.0.2, ...) sharing one port."""

    def __init__(self, name, lun_mb=1024, hosts=("127.0.0.1",)):
        self.port = free_port()
        self.ctrl = 20000 + (os.getpid() + hash(name)) % 10000
        self.iqn = f"iqn.2026-11.io.riscsi.bench:{name}"
        self.lun = Path(f"/dev/shm/riscsi-bench-{name}-{os.getpid()}.img")
        self.lun_mb = lun_mb
        self.hosts = hosts
        self.proc = None

    def tgtadm(self, *args):
        subprocess.run(["tgtadm", "-C", str(self.ctrl), *args], check=True,
                       stdout=subprocess.DEVNULL)

    def __enter__(self):
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self):
        with open(self.lun, "wb") as f:
            for _ in range(self.lun_mb):
                f.write(os.urandom(1 << 20))
        portals = ",".join(f"portal={h}:{self.port}" for h in self.hosts)
        self.proc = spawn(
            ["tgtd", "-f", "-C", str(self.ctrl), "--iscsi", portals],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["tgtadm", "-C", str(self.ctrl), "--op", "show", "--mode", "system"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        self.tgtadm("--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "1", "-T", self.iqn)
        self.tgtadm("--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1",
                    "--lun", "1", "-b", str(self.lun))
        self.tgtadm("--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        return self

    def __exit__(self, *exc):
        # tgtd ignores SIGTERM while it has targets.
        subprocess.run(["tgtadm", "-C", str(self.ctrl), "--lld", "iscsi", "--op", "delete",
                        "--mode", "target", "--tid", "1", "--force"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.lun.unlink(missing_ok=True)

    @property
    def url(self):
        return f"iscsi://{self.hosts[0]}:{self.port}/{self.iqn}/1"

    def connection_info(self, path):
        """Writes the lists-form connection_info of every portal to `path`."""
        portals = [f"{h}:{self.port}" for h in self.hosts]
        data = {"target_portal": portals[0], "target_iqn": self.iqn, "target_lun": 1,
                "target_portals": portals, "target_iqns": [self.iqn] * len(portals),
                "target_luns": [1] * len(portals)}
        Path(path).write_text(json.dumps({"driver_volume_type": "iscsi", "data": data}))
        return f"@{path}"


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_riscsi(volume, pattern, block, depth, seconds, extra=()):
    """`riscsi bench` once; its own JSON gives bytes, time and CPU."""
    out = subprocess.run(
        [str(RISCSI), "bench", "--initiator-name", "iqn.2026-11.io.riscsi.bench:riscsi", volume,
         "--pattern", pattern, "--block", str(block), "--depth", str(depth),
         "--seconds", str(seconds), "--json", *extra],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    bytes_per_s = r["bytes"] / r["elapsed_seconds"]
    return {"MBps": bytes_per_s / 1e6, "iops": r["iops"],
            "cpu_per_gib": r["cpu_seconds"] / (r["bytes"] / GIB)}


def run_iscsi_perf(url, block, depth, random, seconds):
    """libiscsi's `iscsi-perf` reading for `seconds` (it reads until
    interrupted); CPU is its whole process's, login included."""
    args = ["iscsi-perf", "-b", str(block // 512), "-m", str(depth)]
    if random:
        args.append("-r")
    before = children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    cpu = children_cpu() - before
    averages = re.findall(r"iops average (\d+)", out)
    if not averages:
        sys.exit(f"iscsi-perf printed no figures:\n{out[-2000:]}")
    iops = int(averages[-1])
    total = iops * block * elapsed
    return {"MBps": iops * block / 1e6, "iops": iops, "cpu_per_gib": cpu / (total / GIB)}


def nbdinfo(uri, timeout=10):
    """The export `uri` offers (nbdinfo --json), or None if it does not answer."""
    try:
        r = subprocess.run(["nbdinfo", "--json", uri], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["exports"][0]


class NbdServer:
    """An NBD server process for fio's nbd engine, started with `spawn`.

    `uri` is where it serves; None means the server prints its URI as its
    first stdout line (`riscsi attach`). Ready when nbdinfo gets an answer.
    Output goes to `workdir/LABEL.log`, shown when it fails."""

    def __init__(self, label, args, workdir, uri=None, stop_signal=signal.SIGTERM, env=None,
                 ready_timeout=60):
        self.label, self.args, self.workdir = label, args, Path(workdir)
        self.fixed_uri, self.uri = uri, uri
        self.stop_signal, self.env, self.ready_timeout = stop_signal, env, ready_timeout
        self.proc = None
        self.export = None
        self.log_path = self.workdir / (re.sub(r"[^\w.-]", "_", label) + ".log")

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        env = None if self.env is None else {**os.environ, **self.env}
        with open(self.log_path, "a") as log:
            self.proc = spawn(self.args, stdout=subprocess.PIPE if self.fixed_uri is None else log,
                              stderr=log, env=env)
        deadline = time.monotonic() + self.ready_timeout
        self.uri = self.fixed_uri or self._first_line(deadline)
        while True:
            if self.proc.poll() is not None:
                self.fail(f"exited with status {self.proc.returncode} before serving")
            self.export = nbdinfo(self.uri)
            if self.export is not None:
                return
            if time.monotonic() > deadline:
                self.fail(f"does not answer NBD at {self.uri} after {self.ready_timeout} s")
            time.sleep(0.2)

    def _first_line(self, deadline):
        fd, line = self.proc.stdout.fileno(), b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"printed no URI within {self.ready_timeout} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.fail(f"exited (status {self.proc.wait()}) without printing its URI")
                line += chunk
        return line.decode().strip()

    def stop(self):
        if self.proc is not None:
            status = stop(self.proc, self.stop_signal)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
            return status

    def restart(self):
        self.stop()
        self.start()

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def log_tail(self, chars=2000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def fail(self, what):
        command = " ".join(self.args)
        self.stop()
        raise SystemExit(f"{self.label} ({command}) {what}; its output:\n{self.log_tail()}")


def run_fio_nbd(uri, rw, block, depth, seconds, server=None, stall_seconds=30):
    """fio's nbd engine against `uri` for `seconds` (one job, QD `depth`).

    Returns MB/s, IOPS, the largest completion latency, fio's own CPU per GiB
    moved and, given `server` (an NbdServer), the server's CPU per GiB from
    /proc/PID/stat before and after. A run that has not ended `stall_seconds`
    after its time (I/O stuck in the server) or that fails returns
    {"error": why}."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = ["fio", "--name=bench-nbd", "--ioengine=nbd", f"--uri={uri}", "--direct=1",
                f"--rw={rw}", f"--bs={block}", f"--iodepth={depth}", "--numjobs=1",
                "--time_based", f"--runtime={seconds}", "--output-format=json",
                f"--output={out.name}"]
        server_before = server.cpu() if server else None
        fio_before = children_cpu()
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + stall_seconds)
        except subprocess.TimeoutExpired:
            return {"error": f"stalled: fio had not finished {stall_seconds} s after its {seconds} s"}
        fio_cpu = children_cpu() - fio_before
        try:
            server_cpu = server.cpu() - server_before if server else None
        except FileNotFoundError:
            return {"error": "the server exited during the run"}
        if r.returncode != 0:
            return {"error": f"fio exited with status {r.returncode}: {(r.stderr or r.stdout)[-500:].strip()}"}
        job = json.loads(Path(out.name).read_text())["jobs"][0]
    if job["error"]:
        return {"error": f"fio job error {job['error']}"}
    d = job["read" if "read" in rw else "write"]
    if not d["io_bytes"]:
        return {"error": "no I/O completed"}
    gib = d["io_bytes"] / GIB
    return {"MBps": d["bw_bytes"] / 1e6, "iops": d["iops"],
            "max_lat_ms": d["lat_ns"]["max"] / 1e6,
            "cpu_per_gib": server_cpu / gib if server else None,
            "fio_cpu_per_gib": fio_cpu / gib}


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def replace_section(name, text, document="BENCHMARKS.md"):
    """Replaces the lines between the `<!-- NAME:begin -->` and
    `<!-- NAME:end -->` markers of DOCUMENT."""
    path = ROOT / document
    doc = path.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{document} has no {begin} ... {end} section")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", doc))
