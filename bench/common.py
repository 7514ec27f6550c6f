"""Shared pieces of the benchmarks: where the corpus is, building large inputs, measuring runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DCSENTRY_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
OUT = ROOT / "bench" / "out"


def corpus_evtx() -> list[Path]:
    return sorted(CORPUS.glob("evtx/*/*.evtx"))


def repeated_inputs(target_bytes: int, folder: Path) -> tuple[list[Path], int]:
    """Symlinks to the corpus EVTX files, repeated until they add up to `target_bytes`."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    files, total, i = [], 0, 0
    sources = corpus_evtx()
    while total < target_bytes:
        src = sources[i % len(sources)]
        link = folder / f"{i:05d}-{src.name}"
        link.symlink_to(src)
        files.append(link)
        total += src.stat().st_size
        i += 1
    return files, total


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    returncode: int
    cpu_seconds: float = 0.0  # user + system of the process and its waited-for children


def run(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> Run:
    """Wall time and peak RSS (of the process and its waited-for children) of one command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return Run(elapsed, usage.ru_maxrss / 1024, p.returncode, usage.ru_utime + usage.ru_stime)


def machine() -> dict:
    return {"python": sys.version.split()[0], "cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()}


def save(name: str, result: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def dcsentry_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "dcsentry"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dcsentry.cli"]
