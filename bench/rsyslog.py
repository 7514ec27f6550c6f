"""rsyslog as the reference receiver of the intake benchmark: imtcp/imudp on loopback, omfile to one file.

    rs = Rsyslog(Path("/tmp/work")).start(tcp=True, udp=True)
    ... send to rs.tcp_port / rs.udp_port ...
    rs.size(), rs.lines(); rs.stop()

It runs `rsyslogd -n -f <generated conf> -i <pidfile>` with a work directory of its own and no
system inputs (no imuxsock, imjournal, imklog): only the network inputs, bound to a ruleset whose one
action writes the raw message (`%rawmsg%`, the frame's content without the octet count) plus LF
to `out.log`. rsyslog's own status messages go to the default ruleset, which has no action, so the
file holds exactly what arrived from the network. The Debian package is installed if missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RSYSLOGD = "rsyslogd"


def ensure_installed() -> str:
    """Path of rsyslogd; `apt-get install -y rsyslog` (after one `apt-get update` if that fails) if missing."""
    found = shutil.which(RSYSLOGD) or shutil.which(RSYSLOGD, path="/usr/sbin:/sbin")
    if found:
        return found
    env_cmd = ["apt-get", "install", "-y", "rsyslog"]
    if subprocess.run(env_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(env_cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = shutil.which(RSYSLOGD) or shutil.which(RSYSLOGD, path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError("rsyslog installed but rsyslogd not found")
    return found


def version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" compiled")[0].strip() if out else "?"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _udp_bound(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    try:
        return any(line.split()[1] == want for line in Path("/proc/net/udp").read_text().splitlines()[1:])
    except OSError:
        return False


class Rsyslog:
    def __init__(self, work: Path, exe: str | None = None, udp_rcvbuf: str = "32m", sync: bool = False) -> None:
        self.work = work
        # sync: omfile sync="on" (fsync after each batch, as dcsentry's spool commits each batch) with a
        # 1 MB write buffer (with the default 4 KB one it syncs every few messages: ~15k lines/s here)
        self.sync = sync
        self.exe = exe or ensure_installed()
        self.udp_rcvbuf = udp_rcvbuf
        self.out = work / "out.log"
        self.proc: subprocess.Popen | None = None
        self.tcp_port = self.udp_port = 0

    def config(self) -> str:
        sync = ' sync="on" ioBufferSize="1m"' if self.sync else ""
        parts = [f'global(workDirectory="{self.work / "spool"}" maxMessageSize="64k")',
                 'template(name="raw" type="string" string="%rawmsg%\\n")',
                 f'ruleset(name="net") {{ action(type="omfile" file="{self.out}" template="raw"{sync}) }}']
        if self.tcp_port:
            parts += ['module(load="imtcp" maxSessions="2000")',
                      f'input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="net")']
        if self.udp_port:
            parts += ['module(load="imudp")',
                      f'input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="net" '
                      f'rcvbufSize="{self.udp_rcvbuf}")']
        return "\n".join(parts) + "\n"

    def start(self, tcp: bool = True, udp: bool = True, timeout: float = 30.0) -> "Rsyslog":
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "spool").mkdir(exist_ok=True)
        self.tcp_port = _free_port(socket.SOCK_STREAM) if tcp else 0
        self.udp_port = _free_port(socket.SOCK_DGRAM) if udp else 0
        conf = self.work / "rsyslog.conf"
        conf.write_text(self.config())
        self.log = open(self.work / "rsyslogd.stderr", "wb")
        self.proc = subprocess.Popen([self.exe, "-n", "-f", str(conf), "-i", str(self.work / "rsyslogd.pid")],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited ({self.proc.returncode}): "
                                   f"{(self.work / 'rsyslogd.stderr').read_text(errors='replace')}")
            ok = not udp or _udp_bound(self.udp_port)
            if ok and tcp:
                try:
                    socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1).close()
                except OSError:
                    ok = False
            if ok:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("rsyslogd did not bind its ports")

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def size(self) -> int:
        try:
            return self.out.stat().st_size
        except FileNotFoundError:
            return 0

    def lines(self) -> int:
        n = 0
        try:
            with open(self.out, "rb") as f:
                while chunk := f.read(1 << 22):
                    n += chunk.count(b"\n")
        except FileNotFoundError:
            pass
        return n

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
