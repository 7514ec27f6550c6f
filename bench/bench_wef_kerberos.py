"""The Kerberos cost of WEF over HTTP: authentications per second and encrypt/decrypt throughput.

    /tmp/venv/bin/python bench/bench_wef_kerberos.py      # a few seconds
        [--seconds 2]

In one process, against a throw-away MIT realm (tests/krbkit.py, real KDC, real keytabs):
  accept     a fresh connection's authentication: the client's AP-REQ (its service ticket is
             cached after the first, as on Windows) accepted by `KerberosAcceptor` and the AP-REP
             checked by the client; per second, client and server work together on one core;
  unwrap     the collector decrypting one Events envelope (`ConnectionSecurity.unwrap`: framing
             parse + AES256 gss_unwrap_iov), at 30 KB and at WEF's 512000-byte maximum;
  wrap       the collector encrypting an Ack-sized (about 1.5 KB) reply.
This is the per-request cost Kerberos adds to the HTTP intake; the intake itself (parsing, spool)
is measured by bench_wef.py. Results: bench/out/wef-kerberos.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, save

sys.path.insert(0, str(ROOT / "tests"))
from krbkit import in_process, start_realm  # noqa: E402
from wefclient_kerberos import KerberosClient  # noqa: E402

from dcsentry.sources.wef.kerberos import KerberosAcceptor  # noqa: E402

HOST = "wec.dcsentry.test"


def rate(fn, seconds: float) -> tuple[float, int]:
    """Calls of `fn` per second over about `seconds` (after one warm-up call)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_realm(Path(tmp), host=HOST) as realm, in_process(realm):
        ccache = realm.kinit("DC01$", realm.keytabs["DC01$"], Path(tmp) / "cc")
        acceptor = KerberosAcceptor(str(realm.keytabs["service"]))

        def handshake() -> tuple[KerberosClient, object]:
            client, sec = KerberosClient(HOST, ccache), acceptor.new_context()
            client.accept(sec.step(client.authorization()))
            return client, sec

        results: dict = {"machine": machine()}
        per_s, n = rate(handshake, args.seconds)
        results["accept"] = {"per_s": round(per_s), "n": n}
        print(f"accept   {per_s:8.0f} authentications/s (client + server, one core)")
        client, sec = handshake()
        for size in (30_000, 512_000):
            soap = b"\xff\xfe" + os.urandom(size - 2)
            bodies = [client.encrypt(soap) for _ in range(max(16, int(60_000_000 / size)))]
            it = iter(bodies)
            t0 = time.perf_counter()
            for body, ctype in it:
                sec.unwrap(body, ctype)
            dt = time.perf_counter() - t0
            mbs, per_s = len(bodies) * size / dt / 1e6, len(bodies) / dt
            results[f"unwrap_{size}"] = {"per_s": round(per_s), "mb_per_s": round(mbs), "n": len(bodies)}
            print(f"unwrap   {per_s:8.0f} envelopes/s of {size} bytes = {mbs:.0f} MB/s")
        ack = b"\xff\xfe" + os.urandom(1500)
        per_s, n = rate(lambda: sec.wrap(ack), args.seconds)
        results["wrap_ack"] = {"per_s": round(per_s), "n": n}
        print(f"wrap     {per_s:8.0f} Ack replies/s")
    print(f"saved {save('wef-kerberos', results)}")


if __name__ == "__main__":
    main()
