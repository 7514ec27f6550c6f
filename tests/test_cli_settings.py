"""One resolution of the settings for every command (TOML file < DCSENTRY_* < flags, cli/settings.py)
and one HOST:PORT parser (config.host_port): a value means the same wherever it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from dcsentry.cli.settings import resolve_config
from dcsentry.config import data_dir, host_port, load_config


def toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dcsentry.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = toml(tmp_path, '[serve]\nstore = "sqlite:file.db"\nweb = "127.0.0.1:1001"\ndata_dir = "/file"\n'
                          'syslog_udp = ["127.0.0.1:1"]\n')
    cfg = resolve_config(path, {}, {})
    assert (cfg.serve.store, cfg.serve.web, cfg.serve.data_dir) == ("sqlite:file.db", "127.0.0.1:1001", "/file")
    env = {"DCSENTRY_STORE": "sqlite:env.db", "DCSENTRY_WEB": "127.0.0.1:1002", "DCSENTRY_SYSLOG_UDP": "[::1]:2, :3"}
    cfg = resolve_config(path, env, {})
    assert (cfg.serve.store, cfg.serve.web, cfg.serve.data_dir) == ("sqlite:env.db", "127.0.0.1:1002", "/file")
    assert cfg.serve.syslog_udp == ["[::1]:2", ":3"]
    cfg = resolve_config(path, env, {"serve.store": "sqlite:flag.db", "serve.web": None,
                                     "serve.syslog_udp": ("127.0.0.1:4", "127.0.0.1:5,127.0.0.1:6")})
    assert (cfg.serve.store, cfg.serve.web) == ("sqlite:flag.db", "127.0.0.1:1002")  # a flag not given keeps env
    assert cfg.serve.syslog_udp == ["127.0.0.1:4", "127.0.0.1:5", "127.0.0.1:6"]


def test_defaults_without_file_and_empty_values_ignored() -> None:
    cfg = resolve_config(None, {"DCSENTRY_STORE": "", "DCSENTRY_ROLE": "detect", "DCSENTRY_BUS": "nats://n:4222"},
                         {"serve.data_dir": None, "serve.syslog_tcp": ()})
    assert cfg.serve.store == "sqlite:dcsentry.db" and cfg.serve.syslog_tcp == ["127.0.0.1:5514"]
    assert (cfg.serve.role, cfg.serve.bus) == ("detect", "nats://n:4222")


def test_off_disables_listeners_everywhere(tmp_path: Path) -> None:
    path = toml(tmp_path, '[serve]\nsyslog_udp = "off"\nweb = "off"\n[wef]\nhttps = "off"\n')
    cfg = load_config(path)
    assert cfg.serve.syslog_udp == [] and cfg.wef.https == []
    assert resolve_config(path, {}, {}).serve.web == ""
    cfg = resolve_config(None, {"DCSENTRY_SYSLOG_TCP": "off"}, {"serve.syslog_udp": ("off",), "serve.web": "off"})
    assert (cfg.serve.syslog_udp, cfg.serve.syslog_tcp, cfg.serve.web) == ([], [], "")


@pytest.mark.parametrize("text", ['[serve]\nsyslog_udp = "on"\n', '[detection]\nhoneytokens = "off"\n',
                                  '[serve]\nsyslog_udp = "127.0.0.1:514"\n'])
def test_other_strings_for_lists_still_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="expected a list"):
        load_config(toml(tmp_path, text))


def test_wef_listeners_from_flags() -> None:
    cfg = resolve_config(None, {}, {"wef.https": ("0.0.0.0:5986",), "wef.http": ("[::]:5985",)})
    assert cfg.wef.https == ["0.0.0.0:5986"] and cfg.wef.http == ["[::]:5985"]


@pytest.mark.parametrize(("source", "where"), [
    ({"flags": {"serve.syslog_tcp": ("127.0.0.1:99999",)}}, "[serve] syslog_tcp (--syslog-tcp, DCSENTRY_SYSLOG_TCP)"),
    ({"env": {"DCSENTRY_WEB": "localhost"}}, "[serve] web (--web, DCSENTRY_WEB)"),
    ({"file": '[serve]\nsyslog_relp = ["::1:2514"]\n'}, "[serve] syslog_relp (--syslog-relp, DCSENTRY_SYSLOG_RELP)"),
    ({"file": '[wef]\nhttp = ["dc:http"]\n'}, "[wef] http (--wef-http)"),
])
def test_bad_addresses_refused_when_resolved(tmp_path: Path, source: dict, where: str) -> None:
    path = toml(tmp_path, source["file"]) if "file" in source else None
    with pytest.raises(ValueError) as err:
        resolve_config(path, source.get("env", {}), source.get("flags", {}))
    assert str(err.value).startswith(where + ": expected HOST:PORT")


def test_flags_only_set_settings() -> None:
    with pytest.raises(ValueError, match="not a setting"):
        resolve_config(None, {}, {"detection.honeytokens": ("x",)})
    with pytest.raises(ValueError, match="no setting"):
        resolve_config(None, {}, {"serve.nope": "x"})


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:514", ("127.0.0.1", 514)), ("[::1]:514", ("::1", 514)), ("[::]:0", ("::", 0)),
    (":5514", ("127.0.0.1", 5514)), (" dc01.corp.local:6514 ", ("dc01.corp.local", 6514)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)), ("[fe80::1]:1", ("fe80::1", 1)),
])
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["", "514", "localhost", "host:", "host:http", "host:65536", "host:-1",
                                  "::1:514", "2001:db8::1:514", "[::1]514", "[]:514", "[::1:514", "a b:1",
                                  "user@host:1", "host:5 14", "host:\u00b9"])
def test_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        host_port(text)


def test_host_port_default_host() -> None:
    assert host_port(":5986", "0.0.0.0") == ("0.0.0.0", 5986)
    assert host_port("[::]:5986", "0.0.0.0") == ("::", 5986)


def test_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir("") == tmp_path / "dcsentry"
    assert data_dir("~/x") == Path.home() / "x"


@pytest.mark.integration
def test_serve_refuses_a_bad_address_before_starting(tmp_path: Path) -> None:
    res = run_cli("serve", "--data-dir", str(tmp_path), "--web", "off", "--syslog-udp", "::1:514")
    assert res.returncode == 2
    assert b"[serve] syslog_udp (--syslog-udp, DCSENTRY_SYSLOG_UDP): expected HOST:PORT" in res.stderr
    assert not (tmp_path / "spool.db").exists()


@pytest.mark.integration
def test_store_commands_take_the_environment(tmp_path: Path) -> None:
    """`token` (and `inventory`, `wef status`) find the service's store as `serve` does: env included."""
    res = run_cli("token", "create", "--name", "ci", env={"DCSENTRY_DATA_DIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "dcsentry.db").exists()
    res = run_cli("token", "list", "--data-dir", str(tmp_path / "other"), env={"DCSENTRY_DATA_DIR": str(tmp_path)})
    assert res.returncode == 0 and b"ci" not in res.stdout  # the flag wins over the environment
    res = run_cli("token", "list", env={"DCSENTRY_DATA_DIR": str(tmp_path)})
    assert res.returncode == 0 and b"ci" in res.stdout
