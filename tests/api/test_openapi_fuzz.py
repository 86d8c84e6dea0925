"""Weft's OpenAPI description (GET /openapi.json, api/openapi.py), and schemathesis fuzzing a
live server with it: no generated request — odd paths, query values, bodies — may give a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import ServerProcess, make_base


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    proc = ServerProcess(make_base(tmp_path_factory.mktemp("fuzz"))).start()
    yield proc
    proc.stop()


def test_openapi_lists_the_core_routes(fuzzed_server):
    status, document = fuzzed_server.get("/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in (("/api/prompt", "post"), ("/api/view", "get"), ("/api/jobs/{prompt_id}", "get"),
                         ("/api/userdata/{file}/move/{dest}", "post"), ("/api/object_info", "get")):
        assert method in paths[path], path
    view = {p["name"] for p in paths["/api/view"]["get"]["parameters"]}
    assert {"filename", "type", "subfolder", "preview", "channel"} <= view


def test_no_request_gives_a_server_error(fuzzed_server):
    """Every operation, a dozen generated requests each (derandomized, so a failure repeats)."""
    api = schemathesis.openapi.from_url(fuzzed_server.url + "/api/openapi.json")
    failures: list[str] = []
    operations, calls = 0, []
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/ws":  # answers only websocket upgrades
            continue
        operations += 1

        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case):
            response = case.call(timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query or ''} -> "
                                f"{response.status_code}: {response.text[:300]}")

        call()
    assert operations > 50 and len(calls) > 5 * operations, (operations, len(calls))
    assert not failures, "\n".join(sorted(set(failures))[:40])
