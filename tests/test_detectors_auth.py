"""Authentication detectors on synthetic sequences: brute force, password spray, account enumeration,
honeytokens, exclusions and thresholds from a TOML file. Each edge is tested from both sides
(threshold-1 vs threshold, inside vs straddling the window), through the real detection chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcsentry.alerts import Alert
from dcsentry.config import Detection, load_config
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.model import WindowsEvent

from conftest import corpus, run_cli
from eventfactory import (DOMAIN_SID, at, group_change, kerberos, logon_4625, ntlm_4776, ntlm_8004, of_type, run)

WRONG = "0xc000006a"
UNKNOWN = "0xc0000064"


def tries(n: int, account: str = "dadmin", ws: str = "WIN81", start: float = 0, step: float = 1,
          status: str = WRONG) -> list[WindowsEvent]:
    """`n` NTLM validations of one account from one workstation, `step` seconds apart."""
    return [ntlm_4776(start + i * step, account, ws, status) for i in range(n)]


def spray(accounts: int, ws: str = "WIN81", start: float = 0, step: float = 1) -> list[WindowsEvent]:
    """One wrong password for each of `accounts` different accounts."""
    return [ntlm_4776(start + i * step, f"user{i:03d}", ws, WRONG) for i in range(accounts)]


def _updates(engine: DetectionEngine, events: list[WindowsEvent]):
    """Each alert update as it happens (the same object grows, so read it at once)."""
    for ev in events:
        yield from engine.feed(ev)
    yield from engine.finish()


def only(engine, type_: str) -> Alert:
    alerts = of_type(engine, type_)
    assert len(alerts) == 1, [(a.type, a.count, a.start) for a in alerts]
    return alerts[0]


def types(engine) -> set[str]:
    return {a.type for a in engine.alerts.values()}


# -- brute force ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,raised", [(14, False), (15, True)])
def test_brute_force_threshold(n: int, raised: bool) -> None:
    events = tries(n)
    engine = run(events)
    assert ("brute-force" in types(engine)) is raised
    if raised:
        a = only(engine, "brute-force")
        assert (a.count, a.start, a.end, a.accounts, a.hosts, a.protocol) == (
            15, events[0].time, events[-1].time, ["dadmin"], ["WIN81"], "NTLM")
        assert a.severity == "medium" and a.technique.startswith("T1110")


@pytest.mark.parametrize("second_start,raised", [(601, False), (590, True)])
def test_brute_force_window_boundary(second_start: float, raised: bool) -> None:
    """8 tries, then 7 more: 15 within 600 s raises; when the first tries slid out, it does not."""
    engine = run(tries(8, start=0) + tries(7, start=second_start))
    assert ("brute-force" in types(engine)) is raised


def test_brute_force_attacker_below_the_rate_is_quiet() -> None:
    """One wrong password a minute for two hours: 10 per window, never 15."""
    engine = run(tries(120, step=60))
    assert types(engine) == set()


def test_brute_force_that_keeps_going_is_one_growing_alert() -> None:
    events = tries(15) + tries(100, start=20, step=5)
    eng = DetectionEngine(Detection())
    seen: list[tuple[str, int, int, object]] = []
    first_id = None
    for a in _updates(eng, events):
        assert a.type == "brute-force"
        first_id = first_id or a.id
        seen.append((a.id, a.count, a.revision, a.end))
        if a.count == 15:
            assert sorted(e.record_id for e in a.evidence) == [e.record_id for e in events[:15]], \
                "the alert's evidence names the attempts it counts"
    a = only(eng, "brute-force")
    assert {s[0] for s in seen} == {first_id} == {a.id}
    counts, revisions, ends = zip(*[(c, r, e) for _, c, r, e in seen])
    # one update per attempt from the 15th on (finish() releases the last held 4776s in one batch)
    assert len(seen) == 101 and list(counts) == sorted(counts) and list(revisions) == sorted(revisions)
    assert (counts[0], revisions[0], a.count, a.revision) == (15, 0, 115, 100)
    assert list(ends) == sorted(ends) and a.end == events[-1].time and a.start == events[0].time
    assert len(a.evidence) == Detection().max_evidence


def test_brute_force_then_success_says_the_password_may_be_guessed_synthetic() -> None:
    """Each attempt joined with its 8004: the alert also names the server targeted."""
    events = []
    for i in range(20):
        events += [ntlm_4776(i, "dadmin", "WIN81", WRONG), ntlm_8004(i + 0.1, "FILESRV", "dadmin", "WIN81")]
    events += [ntlm_4776(25, "dadmin", "WIN81", "0x0"), ntlm_8004(25.1, "FILESRV", "dadmin", "WIN81")]
    a = only(run(events), "brute-force")
    assert (a.outcome, a.severity, a.count) == ("Success", "high", 20)
    assert "may have been guessed" in a.description and "FILESRV" in a.description
    assert a.details["servers"] == ["FILESRV"] and a.end == at(25)
    assert 8004 in {e.event_id for e in a.evidence}


@pytest.mark.parametrize("status", ["0xc0000071", "0xc0000224"], ids=["password-expired", "must-change"])
def test_brute_force_then_right_password_of_expired_account_is_guessed(status: str) -> None:
    """Expired / must-change answers come only with the right password: the guess succeeded."""
    a = only(run(tries(20) + [ntlm_4776(30, "dadmin", "WIN81", status)]), "brute-force")
    assert (a.outcome, a.severity) == ("Success", "high")


def test_brute_force_success_from_another_source_is_not_a_guess() -> None:
    a = only(run(tries(20) + [ntlm_4776(30, "dadmin", "ADMINPC", "0x0")]), "brute-force")
    assert a.outcome is None and a.severity == "medium"


def test_brute_force_on_an_account_normally_used_from_there_is_low() -> None:
    """A stale saved credential: the account logged on from this source before the failures."""
    a = only(run([ntlm_4776(0, "dadmin", "WIN81", "0x0")] + tries(20, start=10)), "brute-force")
    assert a.severity == "low" and a.details["account_normally_used_from_source"] is True


def test_brute_force_evidence_stays_bounded_with_joined_events_synthetic() -> None:
    cfg = Detection(max_evidence=5)
    cfg.brute_force.threshold = 3
    events = []
    for i in range(4):
        events += [ntlm_4776(i, "dadmin", "WIN81", WRONG), ntlm_8004(i + 0.1, "SRV", "dadmin", "WIN81")]
    events += [ntlm_4776(9, "dadmin", "WIN81", "0x0"), ntlm_8004(9.1, "SRV", "dadmin", "WIN81")]
    a = only(run(events, cfg), "brute-force")
    assert a.outcome == "Success" and len(a.evidence) <= 5


def test_brute_force_over_4625_keys_on_the_address_not_the_random_workstation() -> None:
    """Metasploit's smb_login sends a random workstation name per attempt; the address stays."""
    events = [logon_4625(i, "Administrator", workstation=f"RND{i:04X}", ip="10.9.9.9") for i in range(20)]
    a = only(run(events), "brute-force")
    assert a.count == 20 and a.hosts == ["10.9.9.9"]


def test_kerberos_brute_force_from_4771() -> None:
    a = only(run([kerberos(4771, i, "dadmin", "0x18", ip="::ffff:10.0.0.66") for i in range(15)]), "brute-force")
    assert a.protocol == "Kerberos" and a.hosts == ["10.0.0.66"]


# -- password spray vs brute force -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n,raised", [(4, False), (5, True)])
def test_spray_threshold(n: int, raised: bool) -> None:
    engine = run(spray(n))
    assert ("password-spray" in types(engine)) is raised
    assert "brute-force" not in types(engine)
    if raised:
        a = only(engine, "password-spray")
        assert a.count == 5 and sorted(a.accounts) == [f"user{i:03d}" for i in range(5)]
        assert a.details["pace"] == "fast" and a.technique == "T1110.003"


def test_one_account_many_tries_is_brute_force_only() -> None:
    engine = run(tries(40))
    assert types(engine) == {"brute-force"}


def test_many_accounts_one_try_each_is_spray_only() -> None:
    engine = run(spray(30))
    assert types(engine) == {"password-spray"}
    a = only(engine, "password-spray")
    assert a.count == 30 and a.details["attacked_accounts"] == 30 and len(a.accounts) == 30
    assert len(a.evidence) == 30, "the evidence names every try counted (30 < max_evidence)"


def test_spray_straddling_the_fast_window_is_quiet() -> None:
    engine = run(spray(3) + [ntlm_4776(3700 + i, f"late{i}", "WIN81", WRONG) for i in range(2)])
    assert types(engine) == set()


@pytest.mark.parametrize("minutes", [25, 75])
def test_slow_spray_over_hours_is_one_alert(minutes: int) -> None:
    """20 accounts, one every `minutes`: never 5 in an hour, but 15 within a day."""
    events = spray(20, step=minutes * 60)
    engine = run(events)
    a = only(engine, "password-spray")
    assert a.details["pace"] == "slow" and "brute-force" not in types(engine)
    assert a.count == 20 and len(a.accounts) == 20 and a.start == events[0].time and a.end == events[-1].time


def test_spray_then_success_names_the_guessed_account() -> None:
    a = only(run(spray(10) + [ntlm_4776(20, "user004", "WIN81", "0x0")]), "password-spray")
    assert (a.outcome, a.severity, a.details["guessed_accounts"]) == ("Success", "high", ["user004"])
    assert "user004" in a.description


def test_spray_seen_from_dc_and_host_is_counted_once() -> None:
    """PurpleSharp shape: each try logged as 4776 on the DC and 4625 on the host accessed."""
    events = []
    for i in range(7):
        events += [ntlm_4776(i, f"user{i}", "WORKSTATION5", WRONG),
                   logon_4625(i + 0.2, f"user{i}", workstation="WORKSTATION5", ip="-")]
    a = only(run(events), "password-spray")
    assert a.count == 7 and a.details["attacked_accounts"] == 7


# -- account enumeration ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,raised", [(7, False), (8, True)])
def test_enumeration_threshold(n: int, raised: bool) -> None:
    engine = run([ntlm_4776(i, f"guess{i}", "KALI", UNKNOWN) for i in range(n)])
    assert ("account-enumeration" in types(engine)) is raised
    if raised:
        a = only(engine, "account-enumeration")
        assert a.count == 8 and len(a.details["unknown_names"]) == 8 and len(a.evidence) == 8
        assert "None of the guessed names matched" in a.description


def test_enumeration_same_unknown_name_repeated_is_not_enumeration() -> None:
    assert types(run([ntlm_4776(i, "typo", "WIN81", UNKNOWN) for i in range(30)])) == set()


def test_enumeration_straddling_the_window_is_quiet() -> None:
    events = [ntlm_4776(i, f"a{i}", "KALI", UNKNOWN) for i in range(4)]
    events += [ntlm_4776(905 + i, f"b{i}", "KALI", UNKNOWN) for i in range(4)]
    assert types(run(events)) == set()


def test_enumeration_lists_which_guessed_names_exist() -> None:
    """Names answered "wrong password" or "success" exist, before and after the alert opened."""
    events = [ntlm_4776(0, "alice", "KALI", WRONG), ntlm_4776(1, "bob", "KALI", WRONG)]
    events += [ntlm_4776(2 + i, f"guess{i}", "KALI", UNKNOWN) for i in range(10)]
    events += [ntlm_4776(20, "carol", "KALI", "0x0"), ntlm_4776(21, "dave", "OTHERPC", WRONG)]
    a = only(run(events), "account-enumeration")
    assert a.details["existing_names"] == ["alice", "bob", "carol"]
    assert "alice, bob, carol" in a.description and a.count == 10


def test_kerberos_enumeration_by_address() -> None:
    a = only(run([kerberos(4768, i, f"guess{i}", "0x6", ip="::ffff:10.0.0.99") for i in range(9)]),
             "account-enumeration")
    assert a.protocol == "Kerberos" and a.hosts == ["10.0.0.99"]


# -- honeytokens -----------------------------------------------------------------------------------------------------
def test_honeytoken_by_name_any_single_authentication() -> None:
    cfg = Detection(honeytokens=["CONTOSO\\SQL-Admin"])
    a = only(run([ntlm_4776(0, "sql-admin", "WIN81", "0x0")], cfg), "honeytoken-activity")
    assert a.count == 1 and "sql-admin" in a.description.lower() and a.hosts == ["WIN81"]
    failed = only(run([ntlm_4776(0, "SQL-ADMIN", "WIN81", WRONG)], cfg), "honeytoken-activity")
    assert "wrong-password" in failed.description


def test_honeytoken_names_the_server_from_8004_synthetic() -> None:
    cfg = Detection(honeytokens=["sql-admin"])
    a = only(run([ntlm_4776(0, "sql-admin", "WIN81", "0x0"), ntlm_8004(0.5, "SQL01", "sql-admin", "WIN81")], cfg),
             "honeytoken-activity")
    assert "when accessing SQL01" in a.description and "SQL01" in a.hosts


def test_honeytoken_by_sid_in_kerberos() -> None:
    """4768/4771 carry the account's SID: a honeytoken listed by SID must be caught there."""
    sid = f"{DOMAIN_SID}-7777"
    engine = run([kerberos(4768, 0, "svc_backup_old", "0x0", sid=sid)], Detection(honeytokens=[sid.lower()]))
    assert only(engine, "honeytoken-activity").count == 1


@pytest.mark.parametrize("eid", [4728, 4729])
def test_honeytoken_group_change(eid: int) -> None:
    sid = f"{DOMAIN_SID}-7777"
    by_sid = run([group_change(eid, 0, "Helpdesk", f"{DOMAIN_SID}-3100", member_sid=sid, member_name="-")],
                 Detection(honeytokens=[sid]))
    by_name = run([group_change(eid, 0, "Helpdesk", f"{DOMAIN_SID}-3100", member_sid=sid,
                                member_name="CN=SQL-Admin,OU=Svc,DC=contoso,DC=local")],
                  Detection(honeytokens=["sql-admin"]))
    for engine in (by_sid, by_name):
        a = only(engine, "honeytoken-activity")
        assert a.severity == "high" and "Group membership changed" in a.description


def test_no_honeytoken_no_alert() -> None:
    engine = run([ntlm_4776(0, "sql-admin2", "WIN81", "0x0")], Detection(honeytokens=["sql-admin"]))
    assert types(engine) == set()


# -- exclusions and settings -------------------------------------------------------------------------------------------
def test_exclude_sources_silences_only_those_sources() -> None:
    cfg = Detection(exclude_sources=["scanner01", "10.9.9.9"])
    events = tries(20, ws="SCANNER01") + spray(10, ws="SCANNER01", start=100)
    events += [ntlm_4776(200 + i, f"g{i}", "SCANNER01", UNKNOWN) for i in range(10)]
    events += [logon_4625(300 + i, "Administrator", ip="10.9.9.9") for i in range(20)]
    assert types(run(events, cfg)) == set()
    assert types(run(events)) == {"brute-force", "password-spray", "account-enumeration"}
    other = run(events + tries(20, ws="WIN99", start=400), cfg)
    assert only(other, "brute-force").hosts == ["WIN99"]


def test_honeytoken_is_never_excluded() -> None:
    cfg = Detection(exclude_sources=["SCANNER01"], honeytokens=["sql-admin"])
    assert types(run([ntlm_4776(0, "sql-admin", "SCANNER01", WRONG)], cfg)) == {"honeytoken-activity"}


def test_thresholds_from_a_toml_file(tmp_path: Path) -> None:
    p = tmp_path / "dcsentry.toml"
    p.write_text('[detection]\nhoneytokens = ["decoy"]\nexclude-sources = ["JUMP01"]\n'
                 '[detection.brute_force]\nthreshold = 5\nwindow = 60\n'
                 '[detection.password_spray]\naccounts = 3\n', encoding="utf-8")
    cfg = load_config(p).detection
    assert (cfg.brute_force.threshold, cfg.brute_force.window, cfg.exclude_sources) == (5, 60.0, ["JUMP01"])
    assert types(run(tries(4), cfg)) == set()
    assert types(run(tries(5), cfg)) == {"brute-force"}
    assert types(run(tries(3, step=30) + tries(2, start=61, step=30), cfg)) == set()  # 60 s window
    assert types(run(spray(3), cfg)) == {"password-spray"}
    assert types(run([ntlm_4776(0, "decoy", "X", "0x0")], cfg)) == {"honeytoken-activity"}


@pytest.mark.parametrize("text,word", [
    ("[detection]\nbrute_forse = 3\n", "brute_forse"),
    ("[detection.brute_force]\nthresold = 3\n", "thresold"),
    ("[detectoin]\n", "detectoin"),
])
def test_unknown_setting_is_a_clear_error(tmp_path: Path, text: str, word: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=f"unknown setting '{word}'"):
        load_config(p)


@pytest.mark.parametrize("text", ['[detection.brute_force]\nthreshold = "many"\n', "[detection]\nhoneytokens = 3\n",
                                  "[detection\n"])
def test_bad_value_or_syntax_is_an_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="bad.toml"):
        load_config(p)


@pytest.mark.integration
def test_cli_refuses_an_unknown_setting(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[detection.brute_force]\nthresold = 3\n", encoding="utf-8")
    proc = run_cli("hunt", str(corpus("evtx/omerbenamram-evtx/Security_with_size_t.evtx")), "--jsonl",
                   "--config", str(p))
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"thresold" in proc.stderr


# -- everyday noise that must stay quiet (found with the synthetic domain generator) ---------------------------------
def test_typos_followed_by_success_on_a_shared_host_are_not_a_spray() -> None:
    """A terminal server: many users mistype once, then log on. MDI's triage calls that B-TP."""
    events = []
    for i in range(12):
        events += [ntlm_4776(i * 60, f"user{i}", "RDS01", WRONG), ntlm_4776(i * 60 + 20, f"user{i}", "RDS01", "0x0")]
    assert "password-spray" not in types(run(events))


def test_failures_of_accounts_that_normally_log_on_from_the_source_do_not_count_for_spray() -> None:
    learned = [ntlm_4776(i, f"user{i}", "RDS01", "0x0") for i in range(10)]
    later = [ntlm_4776(4000 + i * 400, f"user{i}", "RDS01", WRONG) for i in range(10)]
    assert "password-spray" not in types(run(learned + later))


def test_brute_force_counts_answers_for_the_locked_account() -> None:
    """After the lockout the DC answers "locked" (NTLM) / "revoked" (Kerberos): the guessing goes on."""
    events = tries(10) + [ntlm_4776(20 + i, "dadmin", "WIN81", "0xc0000234") for i in range(5)]
    assert only(run(events), "brute-force").count == 15
