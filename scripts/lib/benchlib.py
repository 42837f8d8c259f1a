"""What the benchmark scripts share: a throwaway tgtd with a /dev/shm LUN of
random data on one or more portals, `riscsi bench` runs, CPU accounting and
the BENCHMARKS.md section writer."""

import json
import os
import re
import resource
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RISCSI = ROOT / "target" / "release" / "riscsi"
GIB = 1 << 30


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
        with open(self.lun, "wb") as f:
            for _ in range(self.lun_mb):
                f.write(os.urandom(1 << 20))
        portals = ",".join(f"portal={h}:{self.port}" for h in self.hosts)
        self.proc = subprocess.Popen(
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
        [str(RISCSI), "--initiator-name", "iqn.2026-11.io.riscsi.bench:riscsi", "bench", volume,
         "--pattern", pattern, "--block", str(block), "--depth", str(depth),
         "--seconds", str(seconds), "--json", *extra],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    bytes_per_s = r["bytes"] / r["elapsed_seconds"]
    return {"MBps": bytes_per_s / 1e6, "iops": r["iops"],
            "cpu_per_gib": r["cpu_seconds"] / (r["bytes"] / GIB)}


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def replace_section(name, text):
    """Replaces the lines between the `<!-- NAME:begin -->` and
    `<!-- NAME:end -->` markers of BENCHMARKS.md."""
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"BENCHMARKS.md has no {begin} ... {end} section")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", doc))
