"""Counts per event id on every corpus file equal the manifest, through the library and the CLI.

The manifest was computed outside the project (with the `evtx` package), so agreeing with it on
all 36 files, damaged ones included, is the check that no reader silently drops or invents events.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from dcsentry.formats import ReadStats
from dcsentry.sources.files import read_paths

from conftest import CORPUS, corpus, id_counts, jsonl_objects, manifest, manifest_entry, read_file_events, run_cli

ENTRIES = manifest()
DAMAGED = [e["path"] for e in ENTRIES if e["parse_errors"] > 0]

# The CLI subset: a clean EVTX of each kind, a damaged EVTX, and a shipper zip.
CLI_SUBSET = [
    "evtx/evtx-attack-samples/privexchange_dirkjan.evtx",
    "evtx/omerbenamram-evtx/system.evtx",
    "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx",
    "evtx/omerbenamram-evtx/sample_with_a_bad_chunk_magic.evtx",
    "evtx/omerbenamram-evtx/sample-with-zero-data-size-event.evtx",
    "json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip",
]


def test_manifest_is_what_the_tests_expect() -> None:
    """Guards the parametrisation: an empty or reshaped manifest would make the tests below vacuous."""
    assert len(ENTRIES) >= 36
    assert DAMAGED, "the corpus is documented to hold damaged EVTX samples"
    assert {e["format"] for e in ENTRIES} == {"evtx", "json-lines-in-zip"}
    for rel in CLI_SUBSET:
        manifest_entry(rel)
    assert set(DAMAGED) <= set(CLI_SUBSET), "every damaged file also goes through the CLI"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_library_counts_match_manifest(entry: dict[str, Any]) -> None:
    """read_paths yields exactly the manifest's events per id, and its counters agree with them."""
    events, stats = read_file_events(corpus(entry["path"]))
    assert id_counts(events) == entry["event_counts"]
    assert len(events) == entry["records"]
    assert stats.files == 1
    assert stats.records == entry["records"]
    assert {str(k): v for k, v in stats.by_id.items()} == entry["event_counts"]
    if entry["parse_errors"] == 0:
        assert stats.skipped_total == 0, [str(p) for p in stats.problems]
    expected_format = "evtx" if entry["format"] == "evtx" else "zip"
    assert stats.formats[expected_format] == 1


@pytest.mark.parametrize("rel", DAMAGED)
def test_damaged_files_count_their_problems(rel: str) -> None:
    """A damaged file yields its good records and says, with the file's name, what it skipped."""
    events, stats = read_file_events(corpus(rel))
    assert len(events) == manifest_entry(rel)["records"]
    assert stats.skipped_total > 0
    assert stats.skipped_total == manifest_entry(rel)["parse_errors"], stats.skipped
    assert stats.problems, "problems were counted but none kept"
    for p in stats.problems:
        assert p.origin.source.endswith(rel.rsplit("/", 1)[-1])
        assert str(p).startswith(str(corpus(rel)))
        assert "\n" not in str(p)


def test_ids_filter_counts_all_records() -> None:
    """`ids` narrows what is yielded, but the stats still count every record (the summary says so)."""
    rel = "evtx/deepbluecli/metasploit-psexec-native-target-system.evtx"
    stats = ReadStats()
    events = list(read_paths([str(corpus(rel))], stats, ids=frozenset({7045})))
    assert [e.event_id for e in events] == [7045] * manifest_entry(rel)["event_counts"]["7045"]
    assert stats.records == manifest_entry(rel)["records"]


@pytest.mark.integration
@pytest.mark.parametrize("rel", CLI_SUBSET)
def test_cli_jsonl_counts_match_manifest(rel: str) -> None:
    """The real `dcsentry events PATH --jsonl` gives the manifest's counts; damage is reported on stderr."""
    entry = manifest_entry(rel)
    proc = run_cli("events", str(corpus(rel)), "--jsonl")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    counts = Counter(str(o["event_id"]) for o in jsonl_objects(proc.stdout))
    assert dict(counts) == entry["event_counts"]
    err = proc.stderr.decode("utf-8", errors="replace")
    name = rel.rsplit("/", 1)[-1]
    problem_lines = [ln for ln in err.splitlines() if ln.startswith("dcsentry: ")]
    if entry["parse_errors"] > 0:
        assert problem_lines, err
        for ln in problem_lines:
            assert name in ln, ln
        assert re.search(r"\d+ skipped", err), err
    else:
        assert problem_lines == [], err
        assert "skipped" not in err
    assert f"{entry['records']} record(s) read" in err


DC_LOG = json.loads((CORPUS / "dc-log" / "manifest.json").read_text(encoding="utf-8"))


def test_dc_log_manifest_is_what_the_tests_expect() -> None:
    assert len(DC_LOG) >= 50 and all(e["event_counts"] for e in DC_LOG)


@pytest.mark.parametrize("entry", DC_LOG, ids=[e["path"] for e in DC_LOG])
def test_dc_log_counts_match_their_manifest(entry: dict[str, Any]) -> None:
    """The DC-log recordings (corpus/dc-log/manifest.json, paths relative to corpus/dc-log): every
    event read, none invented, whatever carried it (EVTX or a zip of shipper JSON)."""
    events, stats = read_file_events(CORPUS / "dc-log" / entry["path"])
    assert id_counts(events) == entry["event_counts"]
    assert len(events) == stats.records == entry["records"]
    if entry["parse_errors"] == 0:
        assert stats.skipped_total == 0, [str(p) for p in stats.problems]
