"""`hunt` reads several inputs side by side, merged by event time (a DC's Security and NTLM logs as
separate files must interleave as they happened). Each file must still come out whole and once."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import CORPUS, manifest, run_cli

from dcsentry.formats import ReadStats
from dcsentry.sources.files import read_paths_by_time


def test_merged_reading_yields_every_event_of_every_file_once() -> None:
    folder = CORPUS / "evtx" / "evtx-to-mitre-attack"
    stats = ReadStats()
    events = list(read_paths_by_time([str(folder)], stats))
    want: Counter = Counter()
    for entry in manifest():
        if entry["path"].startswith("evtx/evtx-to-mitre-attack/"):
            want.update({int(k): v for k, v in entry["event_counts"].items()})
    assert Counter(e.event_id for e in events) == want
    assert len({(e.origin.source, e.origin.position) for e in events}) == len(events)
    times = [e.time for e in events]
    assert times == sorted(times)  # merged in time order


@pytest.mark.integration
def test_hunt_over_a_folder_finds_what_each_file_finds() -> None:
    folder = CORPUS / "evtx" / "deepbluecli"
    alone = set()
    for f in sorted(folder.iterdir()):
        alone |= {line.split('"type":"', 1)[1].split('"', 1)[0] for line in run_cli("hunt", str(f), "--jsonl")
                  .stdout.decode().splitlines()}
    together = {line.split('"type":"', 1)[1].split('"', 1)[0]
                for line in run_cli("hunt", str(folder), "--jsonl").stdout.decode().splitlines()}
    assert together == alone == {"brute-force", "sensitive-group-addition", "suspicious-service-creation",
                                 "log-cleared"}  # the psexec target's System log was cleared (104)
