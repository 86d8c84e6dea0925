import subprocess
import sys


def test_graph_never_imports_torch():
    code = ("import graph.executor, graph.validation, graph.jobs, graph.worker, graph.registry, sys; "
            "assert 'torch' not in sys.modules, 'graph imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
