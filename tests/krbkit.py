"""A throw-away MIT Kerberos realm on loopback, for the WEF Kerberos tests.

Nothing is faked: `kdb5_util` creates a real KDC database in a temporary folder, `kadmin.local`
adds the principals a Windows domain would have (the DC's machine account `DC01$`, the
collector's `HTTP/<host>` and `HOST/<host>`), `ktadd` writes their keys to keytabs, and a real
`krb5kdc` answers AS/TGS requests on an ephemeral loopback port. Tickets come from `kinit -k`.

Everything is steered by environment variables (`KRB5_CONFIG`, `KRB5_KDC_PROFILE`,
`KRB5RCACHEDIR`), so the machine's own /etc/krb5.conf and KDC are never touched. `Realm.env` is
what a process (the test itself, or a `dcsentry serve` child) needs to use the realm.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _tool(name: str) -> str:
    """A Kerberos program by name (the KDC tools live in /usr/sbin, often off a user's PATH)."""
    found = shutil.which(name) or next((f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install krb5-kdc, krb5-admin-server and krb5-user "
                           "(scripts/bootstrap.sh does)")
    return found


def _die_with_parent() -> None:
    """In the KDC child: the kernel sends it SIGTERM when the test process dies, however it dies,
    so an interrupted run leaves no KDC behind (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _free_port() -> int:
    """A port nothing listens on right now (TCP and UDP), for the KDC to bind."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


KDC_CONF = """\
[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {realm} = {{
        database_name = {root}/principal
        key_stash_file = {root}/stash
        acl_file = {root}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h 0m 0s
        master_key_type = aes256-cts-hmac-sha1-96
        supported_enctypes = {enctypes}
    }}

[logging]
    kdc = FILE:{root}/kdc.log
    admin_server = FILE:{root}/kadmin.log
"""

KRB5_CONF = """\
[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    ignore_acceptor_hostname = false
    udp_preference_limit = 1
    default_ccache_name = FILE:{root}/ccache-default

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    .{domain} = {realm}
    {domain} = {realm}
"""


@dataclass
class Realm:
    """A running test realm: its folder, name, KDC port and the env a process needs to use it."""

    root: Path
    name: str
    host: str  # the collector's host name (its SPNs are HTTP/<host>, HOST/<host>)
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    keytabs: dict[str, Path] = field(default_factory=dict)

    def _run(self, *cmd: str, stdin: str | None = None) -> str:
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                             env={**os.environ, **self.env})
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr or res.stdout}")
        return res.stdout

    def kadmin(self, *queries: str) -> None:
        """Run kadmin.local commands in one process (one process per command is slow)."""
        out = self._run(_tool("kadmin.local"), stdin="\n".join(queries) + "\nquit\n")
        bad = [line for line in out.splitlines() if "error" in line.lower() or "failed" in line.lower()]
        if bad:
            raise RuntimeError("kadmin.local: " + "; ".join(bad))

    def add(self, *principals: str, keytab: Path | str | None = None) -> Path | None:
        """Create principals with random keys; with `keytab`, export their keys to it."""
        queries = [f"addprinc -randkey {p}" for p in principals]
        if keytab is not None:
            queries.append(f"ktadd -k {keytab} -norandkey {' '.join(principals)}")
        self.kadmin(*queries)
        return Path(keytab) if keytab is not None else None

    def rekey(self, principal: str, keytab: Path | str) -> Path:
        """New random keys (kvno + 1) written to `keytab`: what an account password change does."""
        self.kadmin(f"ktadd -k {keytab} {principal}")
        return Path(keytab)

    def kinit(self, principal: str, keytab: Path | str, ccache: Path | str) -> str:
        """A TGT for `principal` from its keytab in a private FILE ccache; returns the ccache name."""
        name = f"FILE:{ccache}"
        self._run(_tool("kinit"), "-k", "-t", str(keytab), "-c", name, self.qualify(principal))
        return name

    def qualify(self, principal: str) -> str:
        return principal if "@" in principal else f"{principal}@{self.name}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Realm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_realm(root: Path, name: str = "DCSENTRY.TEST", host: str = "wec.dcsentry.test",
                clients: tuple[str, ...] = ("DC01$",),
                enctypes: str = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal") -> Realm:
    """Create and start a realm in `root` with the collector's SPNs and the given client principals.

    Keytabs: `service` (HTTP/<host> and HOST/<host>, what the collector is given) and one per
    client (`Realm.keytabs[client]`, used by kinit as the Windows machine would use its secret).
    """
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    domain = host.split(".", 1)[1] if "." in host else host
    fmt = {"root": root, "realm": name, "port": port, "domain": domain, "enctypes": enctypes}
    (root / "kdc.conf").write_text(KDC_CONF.format(**fmt))
    (root / "krb5.conf").write_text(KRB5_CONF.format(**fmt))
    (root / "kadm5.acl").write_text("")
    (root / "rcache").mkdir(exist_ok=True)
    env = {"KRB5_CONFIG": str(root / "krb5.conf"), "KRB5_KDC_PROFILE": str(root / "kdc.conf"),
           "KRB5RCACHEDIR": str(root / "rcache"), "KRB5CCNAME": f"FILE:{root}/ccache-default",
           "KRB5_KTNAME": f"FILE:{root}/no-default.keytab", "KRB5_CLIENT_KTNAME": f"FILE:{root}/no-client.keytab"}
    realm = Realm(root=root, name=name, host=host, port=port, env=env)
    realm._run(_tool("kdb5_util"), "create", "-s", "-r", name, "-P", "dcsentry-test-master-key")
    realm.keytabs["service"] = realm.add(f"HTTP/{host}", f"HOST/{host}", keytab=root / "service.keytab")
    for client in clients:
        realm.keytabs[client] = realm.add(client, keytab=root / f"{client.replace('$', '')}.keytab")
    realm.proc = subprocess.Popen([_tool("krb5kdc"), "-n", "-r", name], env={**os.environ, **env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 15
    while True:
        if realm.proc.poll() is not None:
            raise RuntimeError(f"krb5kdc exited: {realm.proc.stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return realm
        except OSError:
            if time.monotonic() > deadline:
                realm.stop()
                raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{port}") from None
            time.sleep(0.02)


@contextmanager
def in_process(realm: Realm) -> Iterator[Realm]:
    """Point this process's own GSSAPI (test client and in-process acceptors) at `realm`, and put
    the environment back afterwards so other tests never see it."""
    saved = {k: os.environ.get(k) for k in realm.env}
    os.environ.update(realm.env)
    try:
        yield realm
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
