"""`dcsentry token`: API tokens for the web console, REST API and /metrics, made on the store
directly (the service may be running). A token is printed once; only its hash is stored."""

from __future__ import annotations

import os
import time

import click

from ..store.tokens import ROLES, create_token, list_tokens, revoke_token
from .common import open_service_store, store_options

_with_store = store_options()


@click.group()
def token() -> None:
    """API tokens (bearer tokens for the console, the REST API and /metrics)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses it (shown in the audit trail).")
@click.option("--role", type=click.Choice(ROLES), default="read-only", show_default=True,
              help="read-only reads everything; admin also changes alert status, settings and tokens.")
@_with_store
def create(name: str, role: str, config_path: str | None, data_dir: str | None) -> None:
    """Make a token and print it (the only time it is shown)."""
    store = open_service_store(config_path, data_dir)
    try:
        tok, info = create_token(store, name, role, f"cli ({os.environ.get('USER', 'unknown')})")
    finally:
        store.close()
    click.echo(tok)
    click.echo(f"token {info['id']} ({role}) created for {name}; keep it now, it is not stored", err=True)


@token.command("list")
@_with_store
def list_(config_path: str | None, data_dir: str | None) -> None:
    """Every token: id, name, role, when made, last used, revoked."""
    store = open_service_store(config_path, data_dir)
    try:
        rows = list_tokens(store)
    finally:
        store.close()

    def t(v: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(v)) if v else "-"

    for r in rows:
        click.echo(f"{r['id']}  {r['role']:<9}  {r['name']:<20}  made {t(r['created_at'])}  used {t(r['last_used'])}"
                   f"{'  REVOKED ' + t(r['revoked_at']) if r['revoked_at'] else ''}")


@token.command("revoke")
@click.argument("token_id")
@_with_store
def revoke(token_id: str, config_path: str | None, data_dir: str | None) -> None:
    """Revoke a token by its id (its console sessions end too)."""
    store = open_service_store(config_path, data_dir)
    try:
        ok = revoke_token(store, token_id)
    finally:
        store.close()
    if not ok:
        raise click.ClickException(f"no active token {token_id}")
    click.echo(f"token {token_id} revoked")
