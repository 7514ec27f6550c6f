"""bench_wire.py's `--profile`: where the processor's time per message goes.

The processor runs in this process on a spool pre-filled with the messages (1,000 per spool row, as a
TCP connection's batches), nothing else of the service running: once plain (CPU µs per message),
once under cProfile. The profile's cumulative times are split by stage and scaled to the plain run
(cProfile slows small Python calls more than C code, so the shares are approximate):
  header      formats/syslog.py split_header (PRI, RFC 5424 fields)
  text        bytes -> str (formats/siem _decode)
  layout      detect_layout (trying each layout's test in turn)
  json        the JSON layout's first, generic msgspec decode of the body (formats/siem/json.py parse)
  event       evtx JSON -> WindowsEvent (formats/evtx.py from_evtx_json: second, typed decode + build)
  detection   DetectionEngine.feed (activities and every detector)
  step        the rest of the processing step (catalogue filter, DC health, batch lists)
  store       Store.commit_batch (row encoding + SQLite transaction)
  spool       Spool.read (SQLite read + msgpack)
  other       the processor's own loop: identities, de-duplication, counters, describe_pending
"""

from __future__ import annotations

import cProfile
import importlib
import inspect
import pstats
import time
from pathlib import Path
from typing import Any

from loadgen import _cpu_self


def _first(*names: str) -> Any:
    """The first importable `module:attr` (the service package is being reorganised)."""
    for name in names:
        mod, attr = name.split(":")
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {names}")


def _fresh(folder: Path, msgs: list[bytes]) -> Any:
    from dcsentry.config import Config
    from dcsentry.formats.siem import parse_with_layout
    from dcsentry.store.store import open_store

    Spool = _first("dcsentry.sources.spool:Spool", "dcsentry.store.spool:Spool")
    Processor = _first("dcsentry.runtime.processor:Processor", "dcsentry.service.processor:Processor")
    folder.mkdir(parents=True, exist_ok=True)
    spool = Spool(folder / "spool.db", max_rows=len(msgs) + 1)
    now = time.time()
    for first in range(0, len(msgs), 1000):
        spool.append([(now, "127.0.0.1:40000", "tcp", m) for m in msgs[first:first + 1000]])
    store = open_store("sqlite:dcsentry.db", folder)
    if "decode" in inspect.signature(Processor).parameters:  # service/processor.py, before the runtime refactor
        return Processor(store, spool, Config().detection, parse_with_layout)
    return Processor(store, spool, Config())  # runtime/processor.py: decodes with the runtime's own decoder


def _drain(proc: Any) -> int:
    n = 0
    while k := proc.step():
        n += k
    proc.store.close()
    proc.spool.close()
    return n


def _cum(stats: dict, file_end: str, func: str) -> float:
    return sum(v[3] for (f, _, fn), v in stats.items() if fn == func and f.endswith(file_end))


def _called_from(stats: dict, callee: str, file_end: str, func: str) -> float:
    """Cumulative time of C functions named like `callee` when called from file_end:func."""
    total = 0.0
    for (f, _, fn), v in stats.items():
        if f == "~" and callee in fn:
            for (cf, _, cfn), cv in v[4].items():
                if cfn == func and cf.endswith(file_end):
                    total += cv[3]
    return total


def profile(folder: Path, msgs: list[bytes]) -> dict:
    proc = _fresh(folder / "plain", msgs)
    c0 = _cpu_self()
    n = _drain(proc)
    plain_us = 1e6 * (_cpu_self() - c0) / max(n, 1)
    proc = _fresh(folder / "profiled", msgs)
    prof = cProfile.Profile()
    prof.enable()
    _drain(proc)
    prof.disable()
    ps = pstats.Stats(prof)
    st = ps.stats  # type: ignore[attr-defined]
    total = _cum(st, "processor.py", "step")
    feed = _cum(st, "engine.py", "feed")
    add = _cum(st, "pipeline.py", "add") + _cum(st, "step.py", "add") + _cum(st, "step.py", "process")
    json_all = _cum(st, "siem/json.py", "parse")
    event = _cum(st, "evtx.py", "from_evtx_json")
    parts = {
        "header": _cum(st, "syslog.py", "split_header"),
        "text": _cum(st, "siem/__init__.py", "_decode"),
        "layout": _cum(st, "siem/__init__.py", "detect_layout"),
        "json": _called_from(st, "decode", "siem/json.py", "parse"),
        "event": event,
        "detection": feed,
        "step": add - feed,
        # the writer thread (runtime/committer.py) is outside cProfile's view: its SQLite time lands in
        # plain_us only, so "store" here is the rows' encoding and "other" holds the rest
        "store": _cum(st, "store.py", "commit_batch") + _cum(st, "store.py", "prepare_batch"),
        "spool": _cum(st, "spool.py", "read"),
    }
    parts["json_layout_rest"] = max(0.0, json_all - parts["json"] - event)
    parts["other"] = max(0.0, total - sum(parts.values()))
    scale = plain_us / (1e6 * total / n) if total else 0.0
    us = {k: round(1e6 * v / n * scale, 1) for k, v in parts.items()}
    top = sorted(((v[2], f"{Path(f).name}:{fn}") for (f, _, fn), v in st.items()), reverse=True)[:15]
    summary = f"{plain_us:.1f} us CPU/msg: " + ", ".join(f"{k} {v}" for k, v in us.items())
    return {"messages": n, "plain_us_per_msg": round(plain_us, 1), "profiled_us_per_msg": round(1e6 * total / n, 1),
            "us_per_msg": us, "share_pct": {k: round(100 * v / total, 1) for k, v in parts.items()} if total else {},
            "top_own_time": [(name, round(1e6 * t / n, 2)) for t, name in top], "summary": summary}
