"""docs/client-api.yaml against the running app: schemathesis generates requests from the document
and every answer must be a documented, schema-conformant non-5xx response."""

import json
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.webtools import issue_link

SPEC = Path(__file__).resolve().parent.parent / "docs" / "client-api.yaml"
API_PREFIX = "/api/client/v1"

# Loaded at import: schemathesis.pytest.from_fixture relies on a pytest internal that pytest 9 removed.
schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture
def credential(app, make_account) -> str:
    """A real device credential of an activated account that has uploaded a key."""
    account_id = make_account(licence_expires_on=None)
    token = issue_link(app, account_id)
    http = app.test_client()
    answer = http.get(f"/m/{token}/activation", headers={"X-Provisio-Client": "schemathesis"})
    document = json.loads(answer.data)
    return document["client_api"]["credential"]


@schema.parametrize()
# Bounded and reproducible: the same examples on every run, nothing written to .hypothesis/.
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_client_api_conforms_to_its_openapi_document(case, app, credential):
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {credential}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )


def test_every_client_api_route_is_documented(app):
    document = yaml.safe_load(SPEC.read_text())
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith((API_PREFIX, "/snom/")):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {rule.rule} is missing from {SPEC.name}"
    assert len(documented) == 7
