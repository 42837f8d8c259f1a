"""What the benchmark scripts share: a throwaway tgtd with a /dev/shm LUN of
random data on one or more portals, `riscsi bench` and `iscsi-perf` runs, NBD
servers (`riscsi attach`, qemu-nbd + libiscsi) under fio's nbd engine, CPU
accounting, perf profiles with their flamegraphs, medians and ratios,
child-process hygiene and the BENCHMARKS.md section writer."""

import collections
import contextlib
import ctypes
import glob
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


def prepare(script, tools, profiling=False):
    """Installs what is missing (scripts/install-deps, with the flamegraph
    tools when `profiling`), builds the release riscsi, and exits with a
    clear message if one of `tools` (commands) is still not on PATH."""
    install = [str(ROOT / "scripts" / "install-deps")] + (["--profiling"] if profiling else [])
    try:
        subprocess.run(install, check=True)
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
        elif not which(tool):
            sys.exit(f"{script}: {tool} not found (scripts/install-deps installs it)")


def which(tool):
    """`tool` on PATH or in ~/.cargo/bin (where `cargo install` puts it), or None."""
    cargo_bin = Path.home() / ".cargo" / "bin" / tool
    return shutil.which(tool) or (str(cargo_bin) if os.access(cargo_bin, os.X_OK) else None)


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


def file_name(label):
    """`label` with what a file name should not hold replaced by `_`."""
    return re.sub(r"[^\w.-]", "_", label)


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


WRITE_PATTERNS = ("seq-write", "rand-write")
# `riscsi bench` pattern -> fio's --rw.
FIO_RW = {"seq-read": "read", "rand-read": "randread", "seq-write": "write", "rand-write": "randwrite"}


def riscsi_bench_args(volume, pattern, block, depth, seconds, extra=()):
    """The `riscsi bench --json` command line; write patterns get --allow-write."""
    args = [str(RISCSI), "bench", "--initiator-name", "iqn.2026-11.io.riscsi.bench:riscsi", volume,
            "--pattern", pattern, "--block", str(block), "--depth", str(depth),
            "--seconds", str(seconds), "--json", *extra]
    if pattern in WRITE_PATTERNS:
        args.append("--allow-write")
    return args


def run_riscsi(volume, pattern, block, depth, seconds, extra=()):
    """`riscsi bench` once; its own JSON gives bytes, time and CPU."""
    out = subprocess.run(riscsi_bench_args(volume, pattern, block, depth, seconds, extra),
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    bytes_per_s = r["bytes"] / r["elapsed_seconds"]
    return {"MBps": bytes_per_s / 1e6, "iops": r["iops"],
            "cpu_per_gib": r["cpu_seconds"] / (r["bytes"] / GIB)}


def iscsi_perf_args(url, block, depth, random):
    """The `iscsi-perf` command line (it reads until interrupted)."""
    return ["iscsi-perf", "-b", str(block // 512), "-m", str(depth), *(["-r"] if random else []), url]


def run_iscsi_perf(url, block, depth, random, seconds):
    """libiscsi's `iscsi-perf` reading for `seconds` (it reads until
    interrupted); CPU is its whole process's, login included."""
    before = children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(iscsi_perf_args(url, block, depth, random), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


# scripts/install-deps unpacks a matching qemu-nbd + block-iscsi.so pair here when
# apt has no qemu-block-extra for the installed qemu-utils.
LOCAL_QEMU = ROOT / "target" / "qemu-libiscsi"
LOCAL_QEMU_NBD = LOCAL_QEMU / "usr" / "bin" / "qemu-nbd"


def qemu_nbd():
    return str(LOCAL_QEMU_NBD) if LOCAL_QEMU_NBD.exists() else "qemu-nbd"


def check_qemu_iscsi(script):
    """qemu-nbd needs block-iscsi.so from the same qemu build: exits saying
    what is missing, or points QEMU_MODULE_DIR at the local pair."""
    if LOCAL_QEMU_NBD.exists() and not os.environ.get("QEMU_MODULE_DIR"):
        dirs = glob.glob(str(LOCAL_QEMU / "usr" / "lib" / "*" / "qemu"))
        if dirs:
            os.environ["QEMU_MODULE_DIR"] = dirs[0]
            return
    env_dir = os.environ.get("QEMU_MODULE_DIR")
    dirs = [env_dir] if env_dir else glob.glob("/usr/lib/*/qemu")
    if not any((Path(d) / "block-iscsi.so").exists() for d in dirs):
        sys.exit(f"{script}: qemu-nbd's libiscsi driver (block-iscsi.so) not found in "
                 f"{', '.join(dirs) or '/usr/lib/*/qemu'}: scripts/install-deps installs Debian's "
                 "qemu-block-extra (same version as qemu-utils) or unpacks a matching pair into "
                 "target/qemu-libiscsi; or point QEMU_MODULE_DIR at the qemu module folder of an "
                 "unpacked one")
    if not env_dir:
        versions = {}
        for pkg in ("qemu-utils", "qemu-block-extra"):
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
            versions[pkg] = r.stdout.strip() if r.returncode == 0 else None
        if None not in versions.values() and len(set(versions.values())) > 1:
            sys.exit(f"{script}: qemu-block-extra {versions['qemu-block-extra']} does not match "
                     f"qemu-utils {versions['qemu-utils']}: qemu-nbd refuses modules of another build")


def tool_versions(names):
    """The first line of `--version` of each of `names` (riscsi, qemu-nbd,
    nbdkit, fio), or libiscsi's package version for "libiscsi"."""
    def first_line(args):
        r = subprocess.run(args, capture_output=True, text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    commands = {"riscsi": str(RISCSI), "qemu-nbd": qemu_nbd()}
    versions = {}
    for name in names:
        if name == "libiscsi":
            version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libiscsi7"],
                                     capture_output=True, text=True).stdout.strip() or "?"
            versions[name] = f"libiscsi {version}"
        else:
            versions[name] = first_line([commands.get(name, name), "--version"])
    return versions


def check_fio_nbd(script):
    if "uri" not in subprocess.run(["fio", "--enghelp=nbd"], capture_output=True, text=True).stdout:
        sys.exit(f"{script}: this fio has no nbd engine (Debian's fio has it: scripts/install-deps)")


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
        self.log_path = self.workdir / (file_name(label) + ".log")

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


def attach_server(work, url, label="riscsi attach", initiator="riscsi-attach", extra=()):
    """`riscsi attach URL` as an NbdServer (stopped with SIGINT), with a run
    directory of its own under `work`. Give each server its own `initiator`
    name, one that no `riscsi bench` run uses: the same name, target and
    portal give the same ISID, and each login would reinstate (end) the
    other's session."""
    run_dir = Path(work) / ("run-" + file_name(label))
    run_dir.mkdir(parents=True, exist_ok=True)
    return NbdServer(
        label,
        [str(RISCSI), "attach", "--initiator-name", f"iqn.2026-11.io.riscsi.bench:{initiator}", url,
         *extra],
        work, stop_signal=signal.SIGINT, env={"RISCSI_RUN_DIR": str(run_dir)})


def qemu_nbd_server(work, url, label="qemu-nbd+libiscsi"):
    """qemu-nbd with its libiscsi block driver on `url`, on a Unix socket
    (`qemu-nbd -f raw -k SOCK -t -e 4 --cache=none iscsi://...`). Call
    check_qemu_iscsi first."""
    sock = Path(work) / (file_name(label) + ".sock")
    return NbdServer(
        label, [qemu_nbd(), "-f", "raw", "-k", str(sock), "-t", "-e", "4", "--cache=none", url],
        work, uri=f"nbd+unix:///?socket={sock}")


def start_server(stack, server, size, script):
    """Starts `server` in the ExitStack `stack` and exits unless it serves
    `size` bytes read-write."""
    stack.enter_context(server)
    got, read_only = server.export["export-size"], server.export["is_read_only"]
    if got != size or read_only:
        sys.exit(f"{script}: {server.label} serves {got} bytes{' read-only' if read_only else ''}, "
                 f"not the {size >> 20} MiB LUN read-write")
    print(f"{server.label}: {server.uri} (pid {server.proc.pid})", flush=True)
    return server


# Profiles: call graphs from DWARF, as the release build keeps no frame
# pointers (frame-pointer stacks stop at the first Rust frame), at a low rate
# so that perf.data and `perf script` stay small on a short run.
PERF_RECORD = ["perf", "record", "-q", "--call-graph", "dwarf,16384", "-F", "499"]
PROFILE_TOOLS = ["perf", "inferno-collapse-perf", "inferno-flamegraph"]
# Frames with less than this percentage of the samples are left out of a
# flamegraph (inferno's default: 0.01): the SVGs are committed.
FLAMEGRAPH_MIN_WIDTH = 0.5


def check_perf(script):
    """Exits unless perf can record a process here."""
    with tempfile.TemporaryDirectory(prefix="perf-check-") as d:
        r = subprocess.run([*PERF_RECORD, "-o", f"{d}/perf.data", "--", "true"],
                           capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{script}: perf record does not work here (kernel.perf_event_paranoid is "
                 f"{Path('/proc/sys/kernel/perf_event_paranoid').read_text().strip()}; run as root or "
                 f"lower it): {(r.stderr or r.stdout).strip()[-500:]}")


def perf_record(argv, data):
    """Runs `argv` under perf record into `data`."""
    r = subprocess.run([*PERF_RECORD, "-o", str(data), "--", *argv], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"perf record -- {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-1000:]}")


@contextlib.contextmanager
def perf_attached(pid, data):
    """perf record on the running process `pid` into `data` while the
    `with` body runs."""
    proc = spawn([*PERF_RECORD, "-p", str(pid), "-o", str(data)],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # attaching takes perf a moment
        if proc.poll() is not None:
            sys.exit(f"perf record -p {pid} exited ({proc.returncode}): {proc.stderr.read().strip()[-1000:]}")
        yield
    finally:
        stop(proc, signal.SIGINT, timeout=60)
        proc.stderr.close()


_FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$")


def _frame_class(dso):
    name = Path(dso).name
    if "kernel" in dso:
        return "kernel"
    if name == RISCSI.name:
        return "riscsi"
    if name == "iscsi-perf" or name.startswith("libiscsi"):
        return "libiscsi"
    if name.startswith(("libc.so", "libc-")):
        return "libc"
    return "other"


def _symbol(sym):
    # No offset, no Rust hash: `foo::bar::h0123456789abcdef+0x1c` -> `foo::bar`.
    return re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\+0x[0-9a-f]+$", "", sym))


# Kernel leaf symbols by what they do, for the per-I/O accounting. With the
# cpu-clock event a sample due while interrupts are off lands where they come
# back on, so the first group also holds the work of interrupts-off sections
# (softirq network processing, wake-ups).
KERNEL_PARTS = (
    ("switch", re.compile(r"^(finish_task_switch|_raw_spin_unlock_irq|__schedule|schedule|"
                          r"pick_next|dequeue_|enqueue_|try_to_wake_up|ttwu)")),
    ("copy", re.compile(r"^(_copy_to_iter|_copy_from_iter|copy_user|rep_movs|__check_object_size|"
                        r"copy_page|memcpy|skb_copy)")),
    ("page faults", re.compile(r"^(exc_page_fault|clear_page|do_anonymous_page|handle_mm_fault|"
                               r"__handle_mm_fault|do_user_addr_fault|free_pages|__free_pages|"
                               r"release_pages|zap_)")),
)


# riscsi's own leaf symbols by the component they belong to (first match).
COMPONENTS = (
    (("tokio", "mio"), "tokio (reactor, wakers, scheduler)"),
    (("iscsi_session::runtime",), "session driver"),
    (("iscsi_session",), "connection (sans-IO core)"),
    (("iscsi_multipath",), "multipath"),
    (("iscsi_proto",), "codec"),
    (("riscsi_nbd",), "NBD server"),
    (("riscsi::", "hdrhistogram", "rand"), "the command's own loop (bench: histogram, random LBAs)"),
    (("alloc", "core", "std", "bytes"), "allocator, bytes and core"),
)


def _component(sym):
    # Trait impls show as `<Type as Trait>::f`: the type names the component.
    bare = sym.lstrip("<&* ").removeprefix("mut ")
    # A drop belongs to what is dropped.
    bare = bare.removeprefix("core::ptr::drop_in_place<").lstrip("<&* ")
    for prefixes, component in COMPONENTS:
        if bare.startswith(prefixes):
            return component
    return "other"


def _kernel_part(sym):
    for part, pattern in KERNEL_PARTS:
        if pattern.match(sym):
            return part
    return "TCP and the rest"


def profile_report(data, svg, title, top=6):
    """What perf's `data` says, and its flamegraph written to `svg`: samples,
    their event, each class's share of them by the sampled (leaf) frame (kernel, riscsi's
    binary, libiscsi (iscsi-perf and libiscsi.so, when profiled), libc, other: the
    dynamic loader, vDSO, unresolved), the kernel's share split by what its leaf
    symbols do (KERNEL_PARTS), riscsi's share by component (COMPONENTS), and the
    `top` leaf symbols with their class and share."""
    script = subprocess.run(["perf", "script", "--no-inline", "-i", str(data)],
                            capture_output=True, text=True)
    if script.returncode != 0:
        sys.exit(f"perf script -i {data} failed: {script.stderr.strip()[-1000:]}")
    classes, symbols, events = collections.Counter(), collections.Counter(), collections.Counter()
    kernel_parts, components = collections.Counter(), collections.Counter()
    samples, leaf = 0, True
    for line in script.stdout.splitlines():
        if line and not line[0].isspace():
            # `COMM TID TIME: PERIOD EVENT:` (cpu-clock where there is no PMU)
            samples, leaf = samples + 1, False
            events[line.rstrip(":").rsplit(None, 1)[-1].split(":")[0]] += 1
            continue
        m = _FRAME.match(line)
        if m and not leaf:
            leaf = True
            cls = _frame_class(m.group(2))
            classes[cls] += 1
            symbols[(_symbol(m.group(1)), cls)] += 1
            if cls == "kernel":
                kernel_parts[_kernel_part(m.group(1))] += 1
            elif cls == "riscsi":
                components[_component(_symbol(m.group(1)))] += 1
    collapsed = subprocess.run([which("inferno-collapse-perf")], input=script.stdout,
                               capture_output=True, text=True, check=True).stdout
    graph = subprocess.run(
        [which("inferno-flamegraph"), "--title", title, "--minwidth", str(FLAMEGRAPH_MIN_WIDTH),
         "--deterministic"],
        input=collapsed, capture_output=True, text=True, check=True).stdout
    Path(svg).parent.mkdir(parents=True, exist_ok=True)
    Path(svg).write_text(graph)
    total = sum(classes.values()) or 1
    return {"samples": samples, "event": events.most_common(1)[0][0] if events else None,
            "shares": {c: classes[c] / total for c in ("kernel", "riscsi", "libiscsi", "libc", "other")
                       if classes[c] or c != "libiscsi"},
            "kernel_parts": {part: kernel_parts[part] / total
                             for part in [p for p, _ in KERNEL_PARTS] + ["TCP and the rest"]},
            "components": {c: components[c] / total
                           for c in [c for _, c in COMPONENTS] + ["other"]},
            "top": [(sym, cls, n / total) for (sym, cls), n in symbols.most_common(top)]}


def median(runs, key):
    return statistics.median(r[key] for r in runs)


SUMMARY_KEYS = ("MBps", "iops", "lat_us", "cpu_per_gib", "fio_cpu_per_gib", "max_lat_ms")


def summarize(runs, maxima=("max_lat_ms",)):
    """Medians over the runs that worked (the largest value for the keys in
    `maxima`; None for a key no run gave, the SUMMARY_KEYS always there), how
    many ran and worked, and what failed."""
    good = [r for r in runs if "error" not in r]
    out = {"runs": len(runs), "ok": len(good), "errors": [r["error"] for r in runs if "error" in r]}
    for key in {*SUMMARY_KEYS, *(k for r in good for k in r)}:
        values = [r[key] for r in good if r.get(key) is not None]
        out[key] = (max(values) if key in maxima else statistics.median(values)) if values else None
    return out


def fmt(value, spec, unit=""):
    return "n/a" if value is None else format(value, spec) + unit


def ratio(a, b):
    return None if a is None or b is None or not b else a / b


def verdict(value, goal, above):
    """`value` (a ratio) against `goal`: met when at or above it (`above`),
    else when below it."""
    if value is None:
        return "n/a"
    met = value >= goal if above else value < goal
    return f"{value:.2f}x ({'met' if met else 'not met'})"


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
