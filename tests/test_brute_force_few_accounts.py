"""Brute force over a few accounts from one source: each account under the per-account threshold
(15), too few accounts or too many tries each for a spray, but 20+ wrong passwords from the source
in 10 minutes. Edges from both sides, the look-alikes that must stay quiet (typos, stale saved
credentials, sprays), and one alert per attacker with the per-account rule."""

from __future__ import annotations

import pytest

from dcsentry.config import Detection
from dcsentry.model import WindowsEvent

from eventfactory import at, kerberos, logon_4625, ntlm_4776, of_type, run

WRONG = "0xc000006a"


def rounds(accounts: list[str], per_account: int, ws: str = "KALI", start: float = 0, step: float = 1,
           status: str = WRONG) -> list[WindowsEvent]:
    """Round-robin guesses: each of `accounts` gets `per_account` wrong passwords, `step` s apart."""
    out = []
    for i in range(per_account):
        for a in accounts:
            out.append(ntlm_4776(start + len(out) * step, a, ws, status))
    return out


def types(engine) -> set[str]:
    return {a.type for a in engine.alerts.values()}


def brute(engine):
    alerts = of_type(engine, "brute-force")
    assert len(alerts) == 1, [(a.key, a.count) for a in alerts]
    return alerts[0]


@pytest.mark.parametrize("accounts,per_account,raised", [
    (["alice", "bob"], 9, False),  # 18 < 20
    (["alice", "bob"], 10, True),  # 20: the source threshold
    (["alice", "bob", "carol"], 7, True),  # 21
    (["alice", "bob", "carol", "dave"], 5, True),  # 20, 5 each: above a spray's 3
    (["a1", "a2", "a3", "a4", "a5", "a6"], 3, False),  # 18 spread thin: neither
    (["a1", "a2", "a3", "a4", "a5", "a6", "a7"], 3, False),  # 21 but 3 each: a spray's shape, not this rule
])
def test_source_threshold_edges(accounts: list[str], per_account: int, raised: bool) -> None:
    engine = run(rounds(accounts, per_account))
    found = of_type(engine, "brute-force")
    assert bool(found) is raised
    if raised:
        a = brute(engine)
        assert a.key == "KALI|*" and a.details["scope"] == "source"
        assert sorted(a.accounts) == sorted(accounts) and a.count == len(accounts) * per_account
        assert a.details["per_account"] == {x: per_account for x in accounts}
        assert a.severity == "medium" and a.hosts == ["KALI"] and a.start == at(0)
        assert f"tried against {len(accounts)} accounts from KALI" in a.description


def test_straddling_the_window_is_quiet() -> None:
    events = rounds(["alice", "bob"], 5) + rounds(["alice", "bob"], 5, start=611)
    assert types(run(events)) == set()
    assert brute(run(rounds(["alice", "bob"], 5) + rounds(["alice", "bob"], 5, start=580))).count == 20


def test_keeps_growing_one_alert_with_later_accounts() -> None:
    events = rounds(["alice", "bob"], 10) + rounds(["alice", "bob", "carol"], 20, start=30, step=2)
    a = brute(run(events))
    assert a.count == 80 and a.accounts == ["alice", "bob", "carol"]
    assert a.details["per_account"] == {"alice": 30, "bob": 30, "carol": 20}


def test_no_per_account_twin_of_the_source_alert() -> None:
    """Once the source's guessing is an incident, an account crossing 15 does not open a second one."""
    a = brute(run(rounds(["alice", "bob"], 40)))
    assert a.key == "KALI|*" and a.count == 80


def test_per_account_alert_first_takes_its_attempts() -> None:
    """15 on alice (her own alert), then 6 on bob: bob's 6 are too few; alice's 15 are not counted twice."""
    events = rounds(["alice"], 15) + rounds(["bob"], 6, start=20)
    a = brute(run(events))
    assert a.key == "KALI|alice" and a.count == 15
    more = run(events + rounds(["bob", "carol"], 7, start=40))  # bob 13 + carol 7 = 20 apart from alice's
    keys = sorted(x.key for x in of_type(more, "brute-force"))
    assert keys == ["KALI|*", "KALI|alice"]
    wide = [x for x in of_type(more, "brute-force") if x.key == "KALI|*"][0]
    assert sorted(wide.accounts) == ["bob", "carol"] and wide.count == 20


def test_guessed_password_turns_high() -> None:
    events = rounds(["alice", "bob", "carol"], 8) + [ntlm_4776(40, "bob", "KALI", "0x0")]
    a = brute(run(events))
    assert (a.outcome, a.severity, a.details["guessed_accounts"]) == ("Success", "high", ["bob"])
    assert "A logon of bob from KALI with the right password followed" in a.description


def test_success_of_another_account_or_source_is_not_a_guess() -> None:
    events = rounds(["alice", "bob", "carol"], 8) + [ntlm_4776(40, "dave", "KALI", "0x0"),
                                                     ntlm_4776(41, "bob", "ADMINPC", "0x0")]
    a = brute(run(events))
    assert a.outcome is None and a.severity == "medium"


def test_typos_then_success_are_quiet() -> None:
    """A classroom PC: many users, each mistyping two or three times before getting it right."""
    events: list[WindowsEvent] = []
    for i in range(12):
        user, t = f"student{i:02d}", i * 40
        events += [ntlm_4776(t, user, "LAB01", WRONG), ntlm_4776(t + 5, user, "LAB01", WRONG),
                   ntlm_4776(t + 9, user, "LAB01", WRONG if i % 2 else "0x0")]
        if i % 2:
            events.append(ntlm_4776(t + 14, user, "LAB01", "0x0"))
    assert types(run(events)) == set()


def test_stale_saved_credentials_of_regular_users_are_quiet() -> None:
    """A terminal server: three users who normally sign in there, each with an old password saved in a
    drive mapping that retries every 20 s after their password change."""
    users = ["alice", "bob", "carol"]
    events = [ntlm_4776(i, u, "TS01", "0x0") for i, u in enumerate(users)]
    events += [ntlm_4776(100 + 20 * i + j, u, "TS01", WRONG) for i in range(14) for j, u in enumerate(users)]
    assert types(run(events)) == set()


def test_spray_is_not_this_brute_force() -> None:
    """30 accounts, one try each: the spray alert alone."""
    events = [ntlm_4776(i, f"user{i:03d}", "KALI", WRONG) for i in range(30)]
    assert types(run(events)) == {"password-spray"}


def test_excluded_source_is_quiet() -> None:
    cfg = Detection(exclude_sources=["KALI"])
    assert types(run(rounds(["alice", "bob"], 12), cfg)) == set()


def test_threshold_from_config() -> None:
    cfg = Detection()
    cfg.brute_force.source_threshold = 12
    assert brute(run(rounds(["alice", "bob"], 6), cfg)).count == 12
    assert types(run(rounds(["alice", "bob"], 5), cfg)) == set()


def test_kerberos_and_4625_from_one_address() -> None:
    """Kerberos pre-auth failures and SMB logon failures of one address count together."""
    events = [kerberos(4771, i, ["alice", "bob"][i % 2], "0x18", ip="::ffff:10.0.0.66") for i in range(12)]
    events += [logon_4625(20 + i, ["carol", "alice"][i % 2], ip="10.0.0.66") for i in range(10)]
    a = brute(run(events))
    assert a.hosts == ["10.0.0.66"] and a.count == 22 and a.protocol == "Kerberos, NTLM"
    assert sorted(a.accounts) == ["alice", "bob", "carol"]


def test_synthetic_domain_everyday_traffic_is_quiet_and_its_attacks_unchanged() -> None:
    """A day of a 300-user domain (typos, stale credentials, shared servers): no brute force beyond the
    attacks `dcsentry synth` labels, and none of them from the few-accounts rule."""
    from dcsentry.synth import generate

    for attacks in ("none", "brute-force,password-spray"):
        events, labels = generate(seed=11, hours=24, users=300, attacks=attacks)
        engine = run(events)
        found = of_type(engine, "brute-force")
        assert all(a.details.get("scope") != "source" for a in found)
        assert len(found) == sum(1 for lb in labels if lb.type == "brute-force")
