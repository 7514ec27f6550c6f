"""What one dcsentry node handles: throughput the project measured, never a guess.

Every figure names the run that produced it. Machine of all runs: 2 vCPU AMD EPYC, Linux 6.18,
Python 3.11.7, sometimes with other jobs beside (load average 1.5-2.5): figures are on the low side.

- `processor_events_per_s` = 20,029 events/s end to end (21,413 per CPU-second of the processor,
  46.7 µs per message; the receiving process 13.9 µs): `dcsentry serve` with its defaults (SQLite,
  `raw_events = all`) fed a DC's everyday mix (4769 30 %, 4624 20 %, 4634 10 %, 4768 10 %, 4776
  10 %, 8004 8 %, ...) as RFC 5424 syslog carrying evtx JSON over 4 TCP peers, 200,000 messages,
  every one processed: bench/bench_wire.py (2026-12-04, bench/out/wire.json, docs/performance.md).
  The processing half is the bound (the receiving process's 13.9 µs are ~72,000/s per core);
  rsyslog writes the same bytes to a file at 435,497 lines/s, 22x faster.
  Peak RSS 245 MB (processor; receiver 82 MB), flat after 30 minutes of an hour's worth of events
  at 6,000/s: bench/bench_soak.py --minutes 60. 1,855 bytes of store per event: SQLite, VACUUMed,
  `raw_events = all`, events + activities + alerts of the synthetic 2,000-user domain day
  (`dcsentry synth`), bench/bench_retention.py (853 with `raw_events = none`).
- `hunt_events_per_s` = 56,000 events per CPU-second (40,700/s wall), peak RSS 47 MB:
  `dcsentry hunt --jsonl x.jsonl` over `dcsentry synth --out x.jsonl --users 2000 --hours 24`
  (280,669 events, 272 MB), 5.0 s user time (runs of 3.9-5.2 s). Files, no store: what an offline
  hunt over JSON lines does per core. Over the same domain as event XML (`x.xml`, 325 MB):
  30.7-35.3 s wall, about 8,500 events/s.
- `syslog_tcp_msgs_per_s` = 532,415 (octet counting, 10 peers, 0 % loss, 92 % of one core),
  `syslog_tls_msgs_per_s` = 448,908 (10 peers), `syslog_udp_msgs_per_s` = 92,149 (1 peer, 0 %
  loss; 10 peers lost 4.45 %): bench/bench_syslog_rx.py (bench/out/syslog_rx.json), 300,000
  messages of 410 bytes per run, received into a trivial consumer.
- `spool_accept_msgs_per_s` = 107,927: `dcsentry serve` accepting TCP syslog durably into its spool,
  one spool row per received batch (100 peers, 1,000,000 messages, 0 % loss, another job taking 77 %
  of a core; 141,444-165,579 at 1-100 peers on a quiet box): bench/bench_serve.py
  (bench/out/serve.json, docs/performance.md "Syslog intake"). Bound by the 2 shared cores now.
- Other layouts end to end, same bench: 4776 + 8004 only (every event one a detector reads)
  25,232/s; Snare 16,318/s; ArcSight CEF 15,861/s.

`memory_gb` (1 GB per node) is a planning floor, not a measurement: the measured peaks are 245 MB
(processor) and 82 MB (receiver) under an hour of a DC's mix, 47 MB (hunt) for 2,000 users; the
web console was not measured, and learned state grows with the number of accounts and hosts.

`PLANNING_UTILISATION` is a planning rule, not a measurement: size for the busiest hour at 70 % of
the measured rate (Defender for Identity's sensor keeps 15 % of the machine free, sizing.md 4;
70 % leaves room for the web console, the forwarder and slower disks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NodeCapacity:
    events_per_s: float  # sustained, the service path (processor_events_per_s)
    cores: int  # one for receiving (asyncio listeners), one for the processor process
    memory_gb: float  # planning floor; measured peaks below
    store_bytes_per_event: int
    processor_events_per_s: float
    processor_events_per_cpu_s: float
    processor_peak_rss_mb: float
    hunt_events_per_cpu_s: float
    hunt_peak_rss_mb: float
    syslog_tcp_msgs_per_s: float
    spool_accept_msgs_per_s: float
    syslog_tls_msgs_per_s: float
    syslog_udp_msgs_per_s: float
    machine: str
    source: str


NODE = NodeCapacity(
    events_per_s=20_029,
    cores=2,
    memory_gb=1.0,
    store_bytes_per_event=1_855,
    processor_events_per_s=20_029,
    processor_events_per_cpu_s=21_413,
    processor_peak_rss_mb=245,
    hunt_events_per_cpu_s=56_000,
    hunt_peak_rss_mb=47,
    syslog_tcp_msgs_per_s=532_415,
    spool_accept_msgs_per_s=107_927,
    syslog_tls_msgs_per_s=448_908,
    syslog_udp_msgs_per_s=92_149,
    machine="2 vCPU AMD EPYC, Linux 6.18, Python 3.11.7 (shared, load 1.5-2.5)",
    source="dcsentry.audit.capacity docstring; docs/readiness.md 'Measuring a node'; docs/performance.md",
)
PLANNING_UTILISATION = 0.7


def as_dict() -> dict:
    return {**asdict(NODE), "planning_utilisation": PLANNING_UTILISATION}
