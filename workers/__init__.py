"""Worker processes: the process that runs jobs (``python -m workers.main``) and how the server
starts them (``launch``: local subprocesses). graph.pool supervises them."""
