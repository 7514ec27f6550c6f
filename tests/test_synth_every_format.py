"""Every alert type, from every input format, on the synthetic domain: the attacks no public recording
holds (overpass-the-hash, the DPAPI backup key, shadow credentials, primary-group changes, AD CS
SAN requests, remote service installs, honeytokens, brute force over a few accounts, ...) are
written as event XML, evtx JSON lines, Winlogbeat JSON and two syslog captures (RFC 5424 with the
evtx JSON or the event XML as body, octet-counted), read back by the project's readers, and must
each raise the same alerts as the generated events themselves. (No EVTX writer exists; the
recordings in tests/test_dclog_formats.py cover EVTX itself.)"""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta

import pytest

from dcsentry.formats import ReadStats, read_stream
from dcsentry.synth import render
from synthkit import _alerts_for, _missed, as_bytes, day_run

MS = timedelta(milliseconds=1)


def _syslog(events, fmt: str) -> bytes:
    out = []
    for ev in events:
        body = render(ev, fmt).strip()
        msg = f"<13>1 {ev.time.isoformat().replace('+00:00', 'Z')} wec01 forwarder - - - {body}".encode()
        out.append(b"%d %s" % (len(msg), msg))
    return b"".join(out)


@pytest.fixture(scope="module")
def day():
    events, labels = day_run("all")
    return events, labels, {(a.type, a.key) for a in _alerts_for(events, 11, 200)}


@pytest.mark.parametrize("carrier", ["xml", "jsonl", "winlogbeat", "syslog-jsonl", "syslog-xml"])
def test_every_attack_raises_its_alert_in_every_format(day, carrier: str) -> None:
    events, labels, direct = day
    if carrier.startswith("syslog-"):
        data, fmt = _syslog(events, carrier.removeprefix("syslog-")), "syslog"
    else:
        data, fmt = as_bytes(events, carrier), "jsonl" if carrier == "winlogbeat" else carrier
    stats = ReadStats()
    got = list(read_stream(io.BytesIO(data), f"synth.{carrier}", stats, fmt))
    assert stats.skipped_total == 0 and len(got) == len(events), stats.problems
    alerts = _alerts_for(got, 11, 200)
    if carrier == "winlogbeat":  # its @timestamp has milliseconds: an attack may start up to 1 ms earlier
        labels = [dataclasses.replace(lb, start=lb.start - MS) for lb in labels]
    assert not _missed(labels, alerts), _missed(labels, alerts)
    assert {(a.type, a.key) for a in alerts} == direct  # the same alerts, not only the labelled ones
