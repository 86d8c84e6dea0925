import pytest

from graph.registry import NodeRegistry
from nodes import register_builtin_nodes
from tests.graph import testpack


@pytest.fixture
def registry():
    reg = NodeRegistry()
    register_builtin_nodes(reg)
    reg.register_mappings(testpack.NODE_CLASS_MAPPINGS, python_module="custom_nodes.testpack")
    testpack.CALLS.clear()
    return reg


@pytest.fixture
def calls():
    return testpack.CALLS
