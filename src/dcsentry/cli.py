"""The `dcsentry` command. Thin: parse flags, wire sources -> formats -> sinks, report."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .formats import FORMATS, ReadStats
from .config import Detection, load_config
from .sinks.console import EventTable, ProblemPrinter, print_alerts, print_summary
from .sinks.jsonl import JsonLinesWriter
from .sources.files import expand, read_paths


def _ids(value: str | None) -> frozenset[int] | None:
    if not value:
        return None
    try:
        return frozenset(int(x) for x in value.replace(" ", "").split(",") if x)
    except ValueError:
        raise click.BadParameter(f"expected event ids like 4776,7045, got {value!r}") from None


class _FileProgress:
    """A progress bar over input files, on stderr, only when stderr is a terminal."""

    def __init__(self, paths: tuple[str, ...], err: Console) -> None:
        self.enabled = err.is_terminal
        self.progress = None
        if self.enabled:
            total = sum(1 for _ in expand(paths, ReadStats()))
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err, transient=True)
            self.task = self.progress.add_task("reading", total=total)
        self._started = False

    def __enter__(self) -> "_FileProgress":
        if self.progress:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.__exit__(*exc)

    def on_file(self, path: str) -> None:
        if self.progress:
            if self._started:
                self.progress.advance(self.task)
            self._started = True
            self.progress.update(self.task, description=path[-40:])


def make_stats(err: Console) -> ReadStats:
    return ReadStats(on_problem=ProblemPrinter(sys.stderr))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcsentry")
def main() -> None:
    """dcsentry: an identity-threat sensor for Active Directory."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", is_flag=True, help="One JSON object per event on stdout.")
@click.option("--id", "ids", metavar="IDS", help="Only these event ids, e.g. 4776,7045.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default="0 = one per core",
              help="Processes reading files in parallel with --jsonl (lines of different files may "
                   "then interleave in blocks; each file keeps its order).")
def events(paths: tuple[str, ...], jsonl: bool, ids: str | None, fmt: str | None, jobs: int) -> None:
    """Print every event in PATHS (files, directories, or - for stdin)."""
    from .sources.parallel import default_jobs, parallel_jsonl

    wanted = _ids(ids)
    err = Console(stderr=True)
    stats = make_stats(err)
    files = list(expand(paths, stats))
    jobs = jobs or default_jobs(len(files))
    with _FileProgress(paths, err) as prog:
        if jsonl and jobs > 1 and "-" not in files:
            out = sys.stdout.buffer
            for block in parallel_jsonl(files, stats, fmt, wanted, jobs, on_file=prog.on_file):
                out.write(block)
            out.flush()
        elif jsonl:
            writer = JsonLinesWriter(sys.stdout.buffer)
            for ev in read_paths(files, stats, fmt, wanted, on_file=prog.on_file):
                writer.write(ev)
            writer.close()
        else:
            table = EventTable(sys.stdout)
            for ev in read_paths(files, stats, fmt, wanted, on_file=prog.on_file):
                table.write(ev)
    print_summary(stats, err)
    sys.exit(exit_status(stats))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", "mode", flag_value="jsonl", help="One JSON object per alert on stdout.")
@click.option("--cef", "mode", flag_value="cef", help="One CEF line per alert on stdout.")
@click.option("--ocsf", "mode", flag_value="ocsf",
              help="One OCSF 1.8.0 event per alert on stdout (Detection Finding; health: Application Error).")
@click.option("--ecs", "mode", flag_value="ecs", help="One ECS 9.4 document per alert on stdout (JSON lines).")
@click.option("--table", "mode", flag_value="table", help="A table (the default on a terminal).")
@click.option("--incidents", "mode", flag_value="incidents",
              help="One JSON object per incident (alerts linked into one attack story, docs/incidents.md).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
@click.option("--state", metavar="URL|PATH",
              help="Store keeping the learned baselines between runs: sqlite:PATH, postgresql://... (the "
                   "service's store works too) or a bare SQLite file path.")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Also run these Sigma rules and correlations (a .yml file or a folder; repeatable; "
                   "adds to detection.sigma). Rules that do not load are listed on stderr.")
@click.option("--inventory", "inventory_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="The domain's accounts from an LDIF (ldifde / ldapsearch) or Export-Csv (Get-ADUser "
                                   "/ Get-ADComputer) export: which accounts exist, which are DCs and sensitive "
                                   "(repeatable: the files are taken together).")
def hunt(paths: tuple[str, ...], mode: str | None, config_path: str | None, fmt: str | None,
         state: str | None, sigma: tuple[str, ...], inventory_paths: tuple[str, ...]) -> None:
    """Detect attacks in PATHS (files, directories, or - for stdin) and print the alerts."""
    from .hunt import hunt as run_hunt, link_incidents
    from .store.state import load_baseline, save_baseline

    err = Console(stderr=True)
    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _sigma_paths(cfg.detection, sigma)
    inventory = _inventory(inventory_paths) if inventory_paths else None
    stats = make_stats(err)
    try:
        baseline = load_baseline(state) if state else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    except OSError as exc:
        raise click.ClickException(f"cannot open the --state store: {exc}") from None
    with _FileProgress(paths, err) as prog:
        alerts, engine = run_hunt(paths, cfg.detection, stats, fmt, baseline, on_file=prog.on_file,
                                  inventory=inventory)
    unsaved = False
    if state:
        try:
            save_baseline(state, engine.baseline)
        except OSError as exc:  # the alerts are still printed; the exit status says the state was lost
            err.print(f"error: the baselines were not saved to --state: {exc}", highlight=False, markup=False)
            unsaved = True
    incidents = link_incidents(alerts, cfg.detection, engine)
    mode = mode or ("table" if sys.stdout.isatty() else "jsonl")
    if mode == "incidents":
        writer = JsonLinesWriter(sys.stdout.buffer)
        for inc in incidents:
            writer.write(inc.to_dict())
        writer.close()
    elif mode == "jsonl":
        writer = JsonLinesWriter(sys.stdout.buffer)
        for a in alerts:
            writer.write(a.to_dict())
        writer.close()
    elif mode == "cef":
        from .sinks.cef import format_cef

        for a in alerts:
            print(format_cef(a))
    elif mode in ("ocsf", "ecs"):
        from .sinks.forward import json_shape

        shape = json_shape(mode)
        writer = JsonLinesWriter(sys.stdout.buffer)
        for a in alerts:
            writer.write(shape(a))
        writer.close()
    else:
        print_alerts(alerts, Console())
    print_summary(stats, err)
    if engine.sigma is not None:
        for line in engine.sigma.ruleset.report():
            click.echo(line, err=True)
    err.print(f"{len(alerts)} alert(s) from {engine.activities} activities", highlight=False)
    sys.exit(2 if unsaved else exit_status(stats))


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (events, settings, conflicts...).")
@click.option("--events", "event_paths", multiple=True, metavar="PATH",
              help="Also read this DC's logs (EVTX, XML, JSON lines; repeatable) and say which required events "
                   "are missing from them.")
@click.option("--fix-script", "fix_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the remediation into DIR: auditpol.cmd, ntlm-audit.reg/.ps1, a GPO audit.csv and "
                   "GptTmpl.inf.")
@click.option("--strict", is_flag=True, help="Exit 1 also when a required event is only unknown.")
def audit(paths: tuple[str, ...], as_json: bool, event_paths: tuple[str, ...], fix_dir: str | None,
          strict: bool) -> None:
    """Check a DC's exported audit policy (auditpol CSV, GPO audit.csv / GptTmpl.inf, secedit INF,
    reg export, gpresult /x XML): will it produce each event dcsentry reads, and what to change.

    Exit status: 0 ready, 1 a required event will not be produced (or is missing from the logs),
    2 an input could not be read."""
    from .audit.commands import run_audit

    if not paths and not event_paths and not fix_dir:
        raise click.UsageError("give exported files (PATHS), --events PATH, or --fix-script DIR")
    err = Console(stderr=True)
    sys.exit(run_audit(paths, as_json, event_paths, fix_dir, strict, make_stats(err)))


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--store", metavar="URL|PATH",
              help="The service's store, its own counts: sqlite:PATH, postgresql://... or a bare SQLite file path.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
def sizing(paths: tuple[str, ...], store: str | None, as_json: bool, fmt: str | None) -> None:
    """Events per second per DC from its logs (PATHS) or the service's store, and the dcsentry
    nodes, cores and memory that takes, from the project's measured throughput."""
    from .audit.commands import run_sizing

    if not paths and not store:
        raise click.UsageError("give DC logs (PATHS) or --store")
    err = Console(stderr=True)
    stats = make_stats(err)
    code = run_sizing(paths, store, as_json, fmt, stats)
    if paths:
        err.print(f"{stats.files} file(s), {stats.records} record(s) read, {stats.skipped_total} skipped",
                  highlight=False)
    sys.exit(code)


_ENV = {  # environment variables that set [serve] keys (between the config file and the flags)
    "DCSENTRY_DATA_DIR": "data_dir", "DCSENTRY_STORE": "store", "DCSENTRY_WEB": "web",
    "DCSENTRY_SYSLOG_UDP": "syslog_udp", "DCSENTRY_SYSLOG_TCP": "syslog_tcp", "DCSENTRY_SYSLOG_TLS": "syslog_tls",
    "DCSENTRY_SYSLOG_RELP": "syslog_relp", "DCSENTRY_SYSLOG_RELP_TLS": "syslog_relp_tls",
    "DCSENTRY_TLS_CERT": "tls_cert", "DCSENTRY_TLS_KEY": "tls_key", "DCSENTRY_TLS_CLIENT_CA": "tls_client_ca",
    "DCSENTRY_FORWARD": "forward", "DCSENTRY_WEB_CERT": "web_cert", "DCSENTRY_WEB_KEY": "web_key",
    "DCSENTRY_ROLE": "role", "DCSENTRY_BUS": "bus", "DCSENTRY_WEBHOOK_SECRET": "webhook_secret",
}


def _addresses(values: tuple[str, ...]) -> list[str]:
    """Repeated flags or comma lists; `off` disables the listener."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return [] if out == ["off"] else out


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the store and spool live.")
@click.option("--store", "store_url", metavar="URL",
              help="Results store: sqlite:PATH (default sqlite:dcsentry.db in the data dir) or "
                   "postgresql://user@host:5432/db (shared by several nodes).")
@click.option("--syslog-udp", multiple=True, metavar="HOST:PORT", help="UDP syslog listener(s); port 0 picks one; off.")
@click.option("--syslog-tcp", multiple=True, metavar="HOST:PORT", help="TCP syslog listener(s) (octet counting or LF).")
@click.option("--syslog-tls", multiple=True, metavar="HOST:PORT", help="TLS syslog listener(s) (RFC 5425).")
@click.option("--syslog-relp", multiple=True, metavar="HOST:PORT",
              help="RELP listener(s): syslog acknowledged once durable (rsyslog omrelp); nothing lost on a crash.")
@click.option("--syslog-relp-tls", multiple=True, metavar="HOST:PORT", help="RELP over TLS (--tls-cert, --tls-key).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Server certificate (PEM) for --syslog-tls.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False), help="Require client certificates from this CA.")
@click.option("--web", metavar="HOST:PORT", help="Web console, REST API, /metrics and /healthz; off to disable.")
@click.option("--web-cert", type=click.Path(dir_okay=False), help="Certificate (PEM) for the web port: serve HTTPS.")
@click.option("--web-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")
@click.option("--forward", multiple=True, metavar="URL",
              help="Send alerts to cef+udp://, cef+tcp://, cef+tls://host:port, jsonl:///path, ocsf:///path, "
                   "ecs:///path, ocsf+tcp://, ocsf+tls://, ecs+tcp://, ecs+tls://host:port or "
                   "webhook+https://host/path (repeatable; docs/outputs.md).")
@click.option("--wef-https", multiple=True, metavar="HOST:PORT",
              help="Windows Event Forwarding over HTTPS with client certificates ([wef] cert, key, client_ca).")
@click.option("--wef-http", multiple=True, metavar="HOST:PORT",
              help="Windows Event Forwarding over HTTP with Kerberos message encryption ([wef] keytab).")
@click.option("--demo", is_flag=True, help="Also run a simulated domain forwarding attacks to this sensor.")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Run these Sigma rules and correlations live (file or folder; repeatable; adds to detection.sigma).")
@click.option("--role", type=click.Choice(["all", "ingest", "detect", "web"]),
              help="With --bus: ingest (receive, publish), detect (consume, detect, store), web (console only), "
                   "or all (default; without --bus: everything in one process, as always). docs/scaling.md.")
@click.option("--bus", metavar="URL", help="NATS JetStream between the nodes: nats://host:4222 (comma list for a cluster).")
def serve(config_path: str | None, data_dir: str | None, store_url: str | None, syslog_udp: tuple[str, ...],
          syslog_tcp: tuple[str, ...], syslog_tls: tuple[str, ...], syslog_relp: tuple[str, ...],
          syslog_relp_tls: tuple[str, ...], tls_cert: str | None, tls_key: str | None,
          tls_client_ca: str | None, web: str | None, web_cert: str | None, web_key: str | None,
          forward: tuple[str, ...], wef_https: tuple[str, ...], wef_http: tuple[str, ...], demo: bool,
          sigma: tuple[str, ...], role: str | None, bus: str | None) -> None:
    """Run the sensor: receive events over syslog and Windows Event Forwarding, detect, store and
    forward alerts.

    The first start prints an admin token for the web console and API once (only its hash is
    stored); --demo prints a ready-to-click login URL instead."""
    import asyncio
    import os

    from .service.runner import Service

    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    s = cfg.serve
    for var, key in _ENV.items():
        if os.environ.get(var):
            value = os.environ[var]
            setattr(s, key, _addresses((value,)) if isinstance(getattr(s, key), list) else value)
    flags = {"data_dir": data_dir, "store": store_url, "tls_cert": tls_cert, "tls_key": tls_key,
             "tls_client_ca": tls_client_ca, "web": web, "web_cert": web_cert, "web_key": web_key,
             "syslog_udp": syslog_udp, "syslog_tcp": syslog_tcp, "syslog_tls": syslog_tls, "forward": forward,
             "syslog_relp": syslog_relp, "syslog_relp_tls": syslog_relp_tls,
             "role": role, "bus": bus}
    for key, value in flags.items():
        if value:
            setattr(s, key, _addresses(value) if isinstance(value, tuple) else value)
    if wef_https:
        cfg.wef.https = _addresses(wef_https)
    if wef_http:
        cfg.wef.http = _addresses(wef_http)
    if s.web == "off":
        s.web = ""
    from .store.backend import store_kind

    try:
        store_kind(s.store)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if (s.syslog_tls or s.syslog_relp_tls) and not s.tls_cert:
        raise click.UsageError("--syslog-tls and --syslog-relp-tls need --tls-cert (and --tls-key)")
    if s.web_key and not s.web_cert:
        raise click.UsageError("--web-key needs --web-cert")
    from .detectors.senders import parse_bindings

    try:
        parse_bindings(s.senders)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _sigma_paths(cfg.detection, sigma)
    if cfg.detection.sigma:  # load once here to report; the processor process compiles its own copy
        from .detectors.sigma import load_rules

        for line in load_rules(cfg.detection.sigma).report():
            click.echo(line)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        for url in s.forward:  # every URL checked now (and a webhook's secret), nothing connected yet
            from .sinks.forward import open_sink

            open_sink(url, webhook_secret=s.webhook_secret or None).close()
        service = Service(cfg, announce, demo=demo)
        code = asyncio.run(service.run())
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@main.command("attack-layer")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Also count these Sigma rules (a .yml file or a folder; repeatable; adds to detection.sigma).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
def attack_layer(sigma: tuple[str, ...], config_path: str | None) -> None:
    """Print an ATT&CK Navigator layer (JSON) of the techniques dcsentry detects: the built-in alert
    types and the Sigma rules loaded, each technique with the alert types that cover it."""
    import json

    from .attack import navigator_layer

    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _sigma_paths(cfg.detection, sigma)
    metas = []
    if cfg.detection.sigma:
        from .detectors.sigma import load_rules

        ruleset = load_rules(cfg.detection.sigma)
        for line in ruleset.report():
            click.echo(line, err=True)
        metas = [r.meta for r in ruleset.rules if r.output] + [c.meta for c in ruleset.correlations]
    click.echo(json.dumps(navigator_layer(metas), indent=2))


def _sigma_paths(detection: Detection, flags: tuple[str, ...]) -> None:
    """--sigma adds to detection.sigma; a path that is not there is a usage error, not 0 rules."""
    from .detectors.sigma.loader import SigmaPathError, rule_files

    detection.sigma = [*detection.sigma, *flags]
    try:
        rule_files(detection.sigma)
    except SigmaPathError as exc:
        raise click.UsageError(str(exc)) from None


def _inventory(paths: tuple[str, ...]):  # noqa: ANN202 - an Inventory (imported lazily)
    from .activities.context import Inventory
    from .activities.inventory_import import read_exports

    try:
        res = read_exports(paths)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--inventory") from None
    inv = Inventory()
    inv.load(res.accounts)
    return inv


def exit_status(stats: ReadStats) -> int:
    """Non-zero only when nothing at all could be read."""
    return 1 if stats.records == 0 and (stats.skipped_total or stats.files == 0) else 0


def _register() -> None:
    from .deploy import systemd_unit
    from .sources.wef.commands import wef
    from .synth.cli import synth
    from .inventory_cli import inventory
    from .web.cli import token

    main.add_command(inventory)
    main.add_command(synth)
    main.add_command(token)
    main.add_command(wef)
    main.add_command(systemd_unit)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
