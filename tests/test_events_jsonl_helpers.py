"""`events --jsonl` on several EVTX files has the parser helpers write the JSON lines themselves
(formats/evtx_native.py `Lines`, sources/parallel.py `evtx_jsonl`; docs/performance.md). The
output is a contract: the lines must be byte for byte those of the in-process reader (what
`--jobs 1` and `hunt` read), every record present, and the counts and problems the same."""

from __future__ import annotations

import io
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import evtx
import msgspec
import pytest

from conftest import CORPUS, dcsentry_cmd
from dcsentry.formats import ReadStats
from dcsentry.formats.evtx_native import NativeParser
from dcsentry.model import WindowsEvent
from dcsentry.sinks.jsonl import JsonLinesWriter
from dcsentry.sources.files import read_file
from dcsentry.sources.parallel import evtx_jsonl, parallel_jsonl

pytestmark = pytest.mark.integration  # parser helpers are forked children

FILES = sorted((CORPUS / "evtx").glob("*/*.evtx"))


def _in_process(path: Path, ids: frozenset[int] | None = None) -> tuple[bytes, ReadStats]:
    """The reference: the in-process reader, encoded as `events --jsonl --jobs 1` does."""
    stats = ReadStats()
    out = io.BytesIO()
    writer = JsonLinesWriter(out)
    for ev in read_file(str(path), stats):
        stats.saw(ev)
        if ids is None or ev.event_id in ids:
            writer.write(ev)
    writer.close()
    return out.getvalue(), stats


def _helpers(paths: list[Path], jobs: int, ids: frozenset[int] | None = None) -> tuple[bytes, ReadStats]:
    stats = ReadStats()
    return b"".join(evtx_jsonl([str(p) for p in paths], stats, ids, jobs)), stats


def _by_source(block: bytes) -> dict[str, list[bytes]]:
    lines: dict[str, list[bytes]] = defaultdict(list)
    for line in block.splitlines():
        lines[msgspec.json.decode(line)["origin"]["source"]].append(line)
    return lines


def _bare_count(path: Path) -> int:
    """Records the bare parser renders (the benchmark's floor loop)."""
    n = 0
    it = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            next(it)
        except StopIteration:
            return n
        except RuntimeError:
            continue
        n += 1


def test_every_corpus_file_gives_the_same_bytes_counts_and_problems() -> None:
    damaged = 0
    for path in FILES:
        want, want_stats = _in_process(path)
        got, got_stats = _helpers([path], 1)
        assert got == want, path
        assert got_stats.counts() == want_stats.counts(), path
        assert sorted(map(str, got_stats.problems)) == sorted(map(str, want_stats.problems)), path
        undecodable = want_stats.skipped.get("evtx-record", 0) - sum(
            "damaged EVTX data" in p.reason for p in want_stats.problems)
        assert got.count(b"\n") + undecodable == _bare_count(path), path  # every record present
        damaged += bool(want_stats.problems)
    assert damaged  # damaged files went through the helpers' problem path too


def test_lines_decode_to_the_events_of_the_reader() -> None:
    path = FILES[0]
    got, _ = _helpers([path], 1)
    decoded = [msgspec.json.decode(line, type=WindowsEvent) for line in got.splitlines()]
    assert decoded == list(read_file(str(path), ReadStats()))


def test_side_by_side_files_keep_their_order_and_lines(tmp_path: Path) -> None:
    links = []
    for i in range(2 * len(FILES)):  # each corpus file twice, under two names
        link = tmp_path / f"{i:03d}.evtx"
        link.symlink_to(FILES[i % len(FILES)])
        links.append(link)
    got, stats = _helpers(links, 2)
    by_source = _by_source(got)
    want_counts = ReadStats()
    for link in links:
        want, want_stats = _in_process(link)
        assert b"".join(x + b"\n" for x in by_source.get(str(link), [])) == want, link
        want_counts.merge(want_stats)
    assert stats.counts() == want_counts.counts()


def test_ids_filter_the_lines_but_every_record_is_counted() -> None:
    path = FILES[0]
    first = msgspec.json.decode(_in_process(path)[0].splitlines()[0])["event_id"]
    ids = frozenset({first})
    want, want_stats = _in_process(path, ids)
    got, got_stats = _helpers([path], 1, ids)
    assert got == want and got
    assert got_stats.counts() == want_stats.counts()


class _Stuck:
    """A parser that never yields a record (omerbenamram/evtx#290), as the forked helper sees it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def records_json(self) -> object:
        import time

        time.sleep(60)
        return iter(())


def test_a_silent_helper_is_killed_and_reported_then_reading_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for helper in NativeParser._idle.pop(os.getpid(), []):  # helpers forked after the patch below
        helper.kill()
    monkeypatch.setattr(evtx, "PyEvtxParser", _Stuck)
    stats = ReadStats()
    assert b"".join(evtx_jsonl([str(FILES[0])], stats, None, 1, stall=0.5)) == b""
    assert stats.skipped["evtx-stall"] == 1
    assert "stopped making progress" in str(stats.problems[0])
    monkeypatch.undo()
    got, _ = _helpers([FILES[0]], 1)  # a new helper replaces the killed one
    assert got == _in_process(FILES[0])[0]


def test_other_formats_beside_evtx_go_through_the_workers(tmp_path: Path) -> None:
    jsonl = next(p for p in sorted((CORPUS / "json").rglob("*")) if p.is_file() and p.suffix != ".evtx")
    stats = ReadStats()
    got = b"".join(parallel_jsonl([str(jsonl), str(FILES[0])], stats, None, None, 2))
    sources = _by_source(got)
    assert str(FILES[0]) in sources and str(jsonl) in sources
    assert stats.formats["evtx"] == 1 and stats.files == 2


def test_cli_default_and_one_job_print_the_same_lines() -> None:
    folder = str(CORPUS / "evtx")
    cmd = [*dcsentry_cmd(), "events", "--jsonl"]
    many = subprocess.run([*cmd, "--jobs", "2", folder], capture_output=True, check=True).stdout
    one = subprocess.run([*cmd, "--jobs", "1", folder], capture_output=True, check=True).stdout
    assert many.count(b"\n") > 10_000
    assert _by_source(many) == _by_source(one)  # each file's lines, in order, byte for byte
