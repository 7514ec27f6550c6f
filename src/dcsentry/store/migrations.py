"""The schema migrations that every backend runs.

MIGRATIONS is a plain list of (version, name, [statements]) in portable SQL with SQLite's column
types; store/dialect.py maps the types for PostgreSQL (INTEGER PRIMARY KEY -> identity, BLOB ->
BYTEA, REAL -> DOUBLE PRECISION). Append new versions at the end; never edit an applied one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial schema", [
        """CREATE TABLE IF NOT EXISTS events (
            computer TEXT NOT NULL, channel TEXT NOT NULL, record_id BIGINT NOT NULL,
            event_id INTEGER NOT NULL, time_utc TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
            source TEXT, body TEXT NOT NULL,
            PRIMARY KEY (computer, channel, record_id))""",
        "CREATE INDEX IF NOT EXISTS events_time ON events (time_utc)",
        """CREATE TABLE IF NOT EXISTS alerts (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
            status TEXT NOT NULL, start_utc TEXT NOT NULL, end_utc TEXT NOT NULL, count BIGINT NOT NULL,
            revision INTEGER NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, body TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS alerts_start ON alerts (start_utc)",
        """CREATE TABLE IF NOT EXISTS activities (
            seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, time_utc TEXT NOT NULL, account TEXT,
            host TEXT, dc TEXT, body TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS activities_account ON activities (account, time_utc)",
        "CREATE INDEX IF NOT EXISTS activities_host ON activities (host, time_utc)",
        """CREATE TABLE IF NOT EXISTS dc_health (
            dc TEXT NOT NULL, event_id INTEGER NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL, last_event_utc TEXT, count BIGINT NOT NULL,
            PRIMARY KEY (dc, event_id))""",
        """CREATE TABLE IF NOT EXISTS baseline (
            name TEXT PRIMARY KEY, data BLOB NOT NULL, saved_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS outbox (
            seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, revision INTEGER NOT NULL, body TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS counters (
            name TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS progress (
            name TEXT PRIMARY KEY, value BIGINT NOT NULL)""",
    ]),
    (2, "retention by arrival time", [
        "ALTER TABLE activities ADD COLUMN received_at DOUBLE PRECISION",
        "CREATE INDEX IF NOT EXISTS events_received ON events (received_at)",
        "CREATE INDEX IF NOT EXISTS activities_received ON activities (received_at)",
    ]),
    (3, "web console: tokens, sessions, run-time settings, audit trail, readiness, alert list indexes", [
        """CREATE TABLE IF NOT EXISTS api_tokens (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, secret_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, last_used DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION)""",
        """CREATE TABLE IF NOT EXISTS web_sessions (
            id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, token_id TEXT NOT NULL, csrf TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at)",
        """CREATE TABLE IF NOT EXISTS runtime_settings (
            name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            updated_by TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS audit_log (
            id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            target TEXT NOT NULL, detail TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
        "CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, at)",
        """CREATE TABLE IF NOT EXISTS readiness_audits (
            id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, filename TEXT NOT NULL,
            result TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS readiness_audits_at ON readiness_audits (at)",
        """CREATE TABLE IF NOT EXISTS alert_entities (
            entity TEXT NOT NULL, alert_id TEXT NOT NULL, role TEXT NOT NULL, start_utc TEXT NOT NULL,
            PRIMARY KEY (entity, alert_id))""",
        "CREATE INDEX IF NOT EXISTS alert_entities_order ON alert_entities (entity, start_utc, alert_id)",
        "CREATE INDEX IF NOT EXISTS alerts_order ON alerts (start_utc, id)",
        "CREATE INDEX IF NOT EXISTS alerts_type_order ON alerts (type, start_utc, id)",
        "CREATE INDEX IF NOT EXISTS alerts_status_order ON alerts (status, start_utc, id)",
        "CREATE INDEX IF NOT EXISTS alerts_severity_order ON alerts (severity, start_utc, id)",
        "CREATE INDEX IF NOT EXISTS alerts_kind_order ON alerts (kind, start_utc, id)",
        "CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_at, id)",
    ]),
    (4, "authentications by the server accessed (a host's page)", [
        "ALTER TABLE activities ADD COLUMN server TEXT",
        "CREATE INDEX IF NOT EXISTS activities_server ON activities (server, time_utc)",
    ]),
    (5, "account inventory imported from an LDIF / CSV export (store/inventory.py)", [
        """CREATE TABLE IF NOT EXISTS inventory (
            name TEXT PRIMARY KEY, sid TEXT NOT NULL, kind TEXT NOT NULL, dc INTEGER NOT NULL,
            sensitive INTEGER NOT NULL, disabled INTEGER NOT NULL, dn TEXT NOT NULL, body TEXT NOT NULL,
            imported_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS inventory_sid ON inventory (sid)",
    ]),
    (6, "the trust class of each stored event's source (identity.py): an authenticated copy replaces an "
        "unauthenticated one with the same key, never the other way round", [
        "ALTER TABLE events ADD COLUMN trusted INTEGER",
    ]),
    (7, "incidents: alerts linked into one attack story (incidents/, runtime/linking.py), their alerts, "
        "comments, and the host aliases (address -> name) the linking reads", [
        """CREATE TABLE IF NOT EXISTS incidents (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, severity TEXT NOT NULL, start_utc TEXT NOT NULL,
            end_utc TEXT NOT NULL, title TEXT NOT NULL, merged_into TEXT, body TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS incidents_order ON incidents (start_utc, id)",
        "CREATE INDEX IF NOT EXISTS incidents_updated ON incidents (updated_at, id)",
        """CREATE TABLE IF NOT EXISTS incident_alerts (
            alert_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, start_utc TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS incident_alerts_incident ON incident_alerts (incident_id, start_utc)",
        """CREATE TABLE IF NOT EXISTS incident_comments (
            id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, author TEXT NOT NULL,
            text TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS incident_comments_incident ON incident_comments (incident_id, at)",
        """CREATE TABLE IF NOT EXISTS host_aliases (
            address TEXT PRIMARY KEY, name TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL)""",
    ]),
    (9, "events per minute per DC and event id, the last two days (the DC health page's charts: a whole "
        "day read from a few thousand rows, not from the events table)", [
        """CREATE TABLE IF NOT EXISTS dc_minutes (
            dc TEXT NOT NULL, event_id INTEGER NOT NULL, minute BIGINT NOT NULL, count BIGINT NOT NULL,
            PRIMARY KEY (dc, event_id, minute))""",
        "CREATE INDEX IF NOT EXISTS dc_minutes_minute ON dc_minutes (minute)",
    ]),
]


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations not yet applied to a SQLite connection; returns the schema version."""
    from .backend import SqliteBackend

    return SqliteBackend(conn=db).migrate()
