"""Event data never reaches a terminal, a CEF line or a syslog record raw (issue 14 finding 6): an
account name carrying terminal escape sequences (set the title, clear the screen, print a fake
"ALL CLEAR"), NUL, C1 controls and U+2028 goes through `hunt --table`, `hunt --cef` and `serve`'s
ALERT lines as visible escapes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import run_cli
from eventfactory import T0
from servekit import Serve, frame, send_tcp, wait_for

from dcsentry.sinks.safe import visible

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1HALL CLEAR\x00\x85\u2028[bold]x[/bold]\u202eevil"
RAW = ("\x1b", "\x07", "\x00", "\x85", "\u2028", "\u202e")


def _brute_force_lines(n: int = 30) -> list[str]:
    """Winlogbeat 4776 failures for the evil account from one workstation: a brute force."""
    out = []
    for i in range(n):
        doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
               "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing",
                          "channel": "Security", "computer_name": "DC01.contoso.local", "record_id": 100 + i,
                          "keywords": ["Audit Failure"],
                          "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                         "TargetUserName": EVIL, "Workstation": "KALI", "Status": "0xc000006a"}}}
        out.append(json.dumps(doc))
    return out


def test_visible_escapes_every_control_but_keeps_text() -> None:
    assert visible("a\tb\nc") == "a\tb\nc"
    assert visible("a\tb\nc", one_line=True) == "a\\x09b\\x0ac"
    v = visible(EVIL)
    assert not any(c in v for c in RAW)
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in v and "\\u2028" in v and "\\u202e" in v and "ALL CLEAR" in v


@pytest.mark.integration
def test_hunt_table_and_cef_show_escapes_not_controls(tmp_path: Path) -> None:
    src = tmp_path / "evil.json"
    src.write_text("\n".join(_brute_force_lines()) + "\n", encoding="utf-8")
    for mode in ("--table", "--cef"):
        proc = run_cli("hunt", str(src), mode)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.decode("utf-8")
        assert "brute" in out.lower() or "BruteForce" in out, out[:500]
        assert not any(c in out for c in RAW), (mode, out[:800])
        assert "\\x1b" in out, mode
    proc = run_cli("events", str(src))  # without --jsonl: the event table, same rule
    table = proc.stdout.decode("utf-8")
    assert "4776" in table and "\\x1b" in table and not any(c in table for c in RAW)


@pytest.mark.integration
def test_serve_alert_lines_show_escapes_not_controls(tmp_path: Path) -> None:
    svc = Serve(tmp_path / "data").start()
    try:
        send_tcp(svc.ports["tcp"], (frame(line.encode()) for line in _brute_force_lines()))
        line = wait_for(lambda: next((ln for ln in svc.lines if ln.startswith("ALERT ") and "brute-force" in ln), None),
                        what="the brute-force ALERT line")
        assert not any(c in line for c in RAW), repr(line)
        assert "\\x1b" in line
    finally:
        assert svc.stop() == 0
