"""`dcsentry serve`: the settings (file < DCSENTRY_* < flags, cli/settings.py) checked, then the service."""

from __future__ import annotations

import sys

import click

from .common import settings, sigma_paths


@click.command()
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
@click.option("--bus", metavar="URL",
              help="NATS JetStream between the nodes: nats://host:4222 (comma list for a cluster).")
@click.option("--raw-events", type=click.Choice(["none", "detector", "all"]),
              help="Which raw events the store keeps (default all; docs/store.md has the size of each).")
def serve(config_path: str | None, data_dir: str | None, store_url: str | None, syslog_udp: tuple[str, ...],
          syslog_tcp: tuple[str, ...], syslog_tls: tuple[str, ...], syslog_relp: tuple[str, ...],
          syslog_relp_tls: tuple[str, ...], tls_cert: str | None, tls_key: str | None,
          tls_client_ca: str | None, web: str | None, web_cert: str | None, web_key: str | None,
          forward: tuple[str, ...], wef_https: tuple[str, ...], wef_http: tuple[str, ...], demo: bool,
          sigma: tuple[str, ...], role: str | None, bus: str | None, raw_events: str | None) -> None:
    """Run the sensor: receive events over syslog and Windows Event Forwarding, detect, store and
    forward alerts.

    The first start prints an admin token for the web console and API once (only its hash is
    stored); --demo prints a ready-to-click login URL instead."""
    flags = {"serve.data_dir": data_dir, "serve.store": store_url, "serve.tls_cert": tls_cert,
             "serve.tls_key": tls_key, "serve.tls_client_ca": tls_client_ca, "serve.web": web,
             "serve.web_cert": web_cert, "serve.web_key": web_key, "serve.syslog_udp": syslog_udp,
             "serve.syslog_tcp": syslog_tcp, "serve.syslog_tls": syslog_tls, "serve.forward": forward,
             "serve.syslog_relp": syslog_relp, "serve.syslog_relp_tls": syslog_relp_tls, "serve.role": role,
             "serve.bus": bus, "serve.raw_events": raw_events, "wef.https": wef_https, "wef.http": wef_http}
    cfg = settings(config_path, flags)
    s = cfg.serve

    from ..store.backend import store_kind

    try:
        store_kind(s.store)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if (s.syslog_tls or s.syslog_relp_tls) and not s.tls_cert:
        raise click.UsageError("--syslog-tls and --syslog-relp-tls need --tls-cert (and --tls-key)")
    if s.web_key and not s.web_cert:
        raise click.UsageError("--web-key needs --web-cert")
    from ..detectors.senders import parse_bindings

    try:
        parse_bindings(s.senders)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sigma_paths(cfg.detection, sigma)
    if cfg.detection.sigma:  # load once here to report; the processor process compiles its own copy
        from ..detectors.sigma import load_rules

        for line in load_rules(cfg.detection.sigma).report():
            click.echo(line)

    import asyncio

    from ..service.runner import Service  # only now: a bad setting is told without loading the service

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        for url in s.forward:  # every URL checked now (and a webhook's secret), nothing connected yet
            from ..sinks.forward import open_sink

            open_sink(url, webhook_secret=s.webhook_secret or None).close()
        service = Service(cfg, announce, demo=demo)
        code = asyncio.run(service.run())
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
