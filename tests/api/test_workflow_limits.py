"""A UI workflow whose nested subgraphs would flatten into millions of nodes is refused by the
server before it expands, under the server's own --max-prompt-nodes, and the server stays responsive."""

import time

import pytest

from tests.graph.test_workflow_limits import bomb, nested_workflow

from .conftest import ServerProcess


@pytest.fixture(scope="module")
def small_server(base_dir):
    proc = ServerProcess(base_dir, ["--max-prompt-nodes", "1000"]).start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("route, body", [("/workflow/convert", {"workflow": bomb()}),
                                         ("/prompt", {"workflow": bomb()})])
def test_bomb_refused_quickly_and_the_server_answers(small_server, route, body):
    start = time.monotonic()
    status, response = small_server.post(route, body)
    elapsed = time.monotonic() - start
    assert status == 400 and response["error"]["type"] == "invalid_workflow"
    assert response["error"]["details"] == "the workflow expands to more than 1000 nodes (limit --max-prompt-nodes)"
    assert elapsed < 5, elapsed
    status, queue = small_server.get("/queue")
    assert status == 200 and queue["queue_pending"] == []
    assert small_server.process.poll() is None


def test_the_servers_limit_applies(small_server):
    status, response = small_server.post("/workflow/convert", {"workflow": nested_workflow(levels=2, fanout=10)})
    assert status == 200 and len(response["prompt"]) == 100  # 210 nodes counting the instances
    status, response = small_server.post("/workflow/convert", {"workflow": nested_workflow(levels=3, fanout=10)})
    assert status == 400 and "more than 1000 nodes" in response["error"]["details"]


def test_self_containing_subgraph_refused(small_server):
    workflow = nested_workflow(levels=2, fanout=3)
    workflow["definitions"]["subgraphs"][0]["nodes"].append(
        dict(workflow["nodes"][0], id=5))  # level 0 holds an instance of level 1, which holds level 0
    status, response = small_server.post("/workflow/convert", {"workflow": workflow})
    assert status == 400 and response["error"]["type"] == "invalid_workflow"
    assert "contains itself" in response["error"]["details"]
