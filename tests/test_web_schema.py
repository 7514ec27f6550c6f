"""schemathesis against the live server: every operation of the OpenAPI spec the server publishes
(read with the admin token), fed generated valid and invalid inputs, must answer with a status and
a body its spec documents, and never a server error. A few examples per operation keep it quick."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from webkit import BRUTE, GROUP, base_url, send_corpus, start, wait_alert, client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory: pytest.TempPathFactory):
    svc = start(tmp_path_factory.mktemp("schema") / "data")
    try:
        send_corpus(svc, BRUTE, {4625})
        send_corpus(svc, GROUP)
        with client(svc, svc.token) as api:
            wait_alert(api, "an alert to read", type="brute-force")
        raw = httpx.get(f"{base_url(svc)}/openapi.json", headers={"Authorization": f"Bearer {svc.token}"}).json()
        schema = schemathesis.openapi.from_dict(raw)
        schema.config.update(base_url=base_url(svc), headers={"Authorization": f"Bearer {svc.token}"})
        # The event stream never ends by design (tested in test_web_api); everything else is fuzzed.
        yield schema.exclude(path="/api/v1/alerts/stream")
    finally:
        assert svc.stop() == 0


# An upload is "valid" to the spec whatever its bytes; the server still reads them and answers 422
# when they are no audit-policy export. Likewise a run-time list's entries are strings to the spec,
# and the server parses an alert exclusion rule (422 in FastAPI's shape when it does not parse).
# That one check is off for those operations.
CONTENT_CHECKED = {"POST /api/v1/readiness/audits", "PUT /api/v1/settings/{name}"}


def _fuzz(op, mode: GenerationMode) -> None:  # noqa: ANN001 - a schemathesis APIOperation
    excluded = [positive_data_acceptance] if op.label in CONTENT_CHECKED else []

    @given(case=op.as_strategy(mode))
    @settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case) -> None:  # noqa: ANN001
        case.call_and_validate(timeout=30, excluded_checks=excluded)

    run()


def test_api_keeps_to_its_spec(live_schema) -> None:
    """Each operation, valid and invalid inputs. (Driven by hand rather than by schemathesis's pytest
    plugin, whose fixture-based loading does not run under pytest 9.)"""
    failures = []
    ops = [r.ok() for r in live_schema.get_all_operations()]
    assert len(ops) >= 15
    for op in ops:
        for mode in GenerationMode:
            try:
                _fuzz(op, mode)
            except Unsatisfiable:  # no input to break: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE, op.label
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{op.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)


def test_spec_needs_a_token_and_names_the_scheme(live_schema) -> None:
    raw = live_schema.raw_schema
    assert raw["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = raw["paths"]
    assert "/api/v1/alerts" in paths and "/api/v1/alerts/{alert_id}/status" in paths
    assert all("security" in op for p, ops in paths.items() if p.startswith("/api/") for op in ops.values())
