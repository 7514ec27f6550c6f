"""Directory Service Changes in the corpus: what the alerts from real recordings say, and the
console's run-time lists reaching the directory detector (the files are scored in test_hunt_dclog.py)."""

from __future__ import annotations

from conftest import corpus, read_file_events
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt


# -- the corpus -----------------------------------------------------------------------------------------------
def hunted(rel: str) -> dict[str, list]:
    found, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    out: dict[str, list] = {}
    for a in found:
        out.setdefault(a.type, []).append(a)
    return out


def test_corpus_privexchange_names_the_trustee_and_the_relay_source() -> None:
    (a,) = hunted("evtx/evtx-attack-samples/privexchange_dirkjan.evtx")["dcsync-rights"]
    assert a.hosts == ["192.168.111.87"] and "PrivExchange" in a.description
    assert "Get-Changes-All to S-1-5-21-2895268558-4179327395-2773671012-1151" in a.description


def test_corpus_powerview_acl_is_one_alert_for_three_aces() -> None:
    (a,) = hunted("dc-log/json/otrf-security-datasets/empire_powerview_ldap_ntsecuritydescriptor.zip")["dcsync-rights"]
    assert a.count == 3 and "In-Filtered-Set" in a.description and a.hosts == ["172.18.39.5"]


def test_corpus_rbcd_file_ignores_the_accidental_deletion_ace() -> None:
    got = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-Computer account set for RBCD delegation.evtx")
    assert "acl-change" not in got and got["rbcd-change"][0].accounts[-1] == "target01$"


def test_corpus_gpo_permissions_name_the_ace() -> None:
    got = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-Permissions changed on a GPO.evtx")
    assert "WriteDacl" in got["gpo-change"][0].description and "127328d6" in got["gpo-change"][0].description.lower()


def test_corpus_dc_is_the_reporting_computer() -> None:
    (a,) = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-AdminSDholder permissions changed.evtx")["adminsdholder-change"]
    assert a.dcs == ["ROOTDC1"] and a.evidence and a.evidence[0].computer.upper().startswith("ROOTDC1")


def test_run_time_lists_from_the_console_reach_the_directory_detector() -> None:
    """`directory_writers_allowed` (a planned editor) quiets its ACL change; `sensitive_objects` is a
    list the console edits too: both applied to a running engine (settings_watch -> configure)."""
    from dcsentry.detectors.engine import DetectionEngine

    rel = "dc-log/evtx/evtx-to-mitre-attack/ID5136-4662 AD object owner changed.evtx"  # admmig takes ownership
    events, _ = read_file_events(corpus(rel))

    def types(cfg: Detection | None) -> set[str]:
        engine = DetectionEngine(Detection())
        if cfg is not None:
            engine.update_lists(cfg)
        for ev in events:
            engine.feed(ev)
        engine.finish()
        return {a.type for a in engine.alerts.values()}

    assert "acl-change" in types(None)
    planned = Detection(directory_writers_allowed=["admmig"], sensitive_objects=["ou=tier0,dc=offsec,dc=lan"])
    assert "acl-change" not in types(planned)

