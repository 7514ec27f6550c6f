"""`hunt` has the EVTX helper process decode the records (msgpack back) and starts the next file's
helper ahead when it reads many files one after another (docs/performance.md, "Offline hunting").
Neither may change what is read: the events, their order, the problems and the counts."""

from __future__ import annotations

from pathlib import Path

from conftest import CORPUS
from dcsentry.formats import ReadStats
from dcsentry.sources.files import MAX_MERGED_FILES, read_file, read_paths_by_time

FILES = sorted((CORPUS / "evtx").glob("*/*.evtx"))


def _read(path: Path, in_helper: bool) -> tuple[list, ReadStats]:
    stats = ReadStats()
    return list(read_file(str(path), stats, decode_in_helper=in_helper)), stats


def test_decoding_in_the_helper_reads_the_same_events_and_problems() -> None:
    damaged = 0
    for path in FILES:
        here, here_stats = _read(path, False)
        there, there_stats = _read(path, True)
        assert there == here, path
        assert [str(p) for p in there_stats.problems] == [str(p) for p in here_stats.problems], path
        assert there_stats.counts() == here_stats.counts(), path
        damaged += bool(here_stats.problems)
    assert damaged  # the corpus has damaged files: their problems went through the helper's path too


def test_many_files_read_one_after_another_with_the_next_one_started_ahead(tmp_path: Path) -> None:
    links = []
    for i in range(MAX_MERGED_FILES + 3):  # past the merge limit: sequential reading, with prefetch
        link = tmp_path / f"{i:03d}.evtx"
        link.symlink_to(FILES[i % len(FILES)])
        links.append(link)
    stats = ReadStats()
    got = list(read_paths_by_time([str(tmp_path)], stats))
    want, want_stats = [], ReadStats()
    for link in links:
        events = list(read_file(str(link), want_stats))
        for ev in events:
            want_stats.saw(ev)
        want += events
    assert got == want
    assert stats.counts() == want_stats.counts()
