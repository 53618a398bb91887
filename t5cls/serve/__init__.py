"""``t5cls serve``: the tasks of a scoring run behind HTTP, concurrent requests scored in shared batches.

    request ─ rows.py (checked, template columns) ─ batcher.py (queue, one scorer thread) ─ scoring.py
    (`ChunkScorer`: the chunk step of every run) ─ app.py (the answer in the endpoint's shape)

server.py binds the socket, loads the model while /health says 503, and stops on SIGTERM/SIGINT
after answering every request in flight. Optional extra: ``pip install "t5cls[serve]"``.
"""
