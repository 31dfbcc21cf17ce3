"""Demo ``assistant`` agents: A2A 1.0 agents that behave like LLM-backed ones.

Every message becomes a Task with a lifecycle, answered on the wire a2a-sdk 1.3.0 agents
speak (JSON-RPC ``SendMessage`` / ``SendStreamingMessage`` / ``GetTask`` / ``CancelTask`` at
``POST /``, and HTTP+JSON ``POST /message:send``, ``POST /message:stream``, ``GET /tasks/{id}``,
``POST /tasks/{id}:cancel``). A task thinks for a ``ttft`` draw, then streams its answer as
artifact chunks of ``chunk_tokens`` tokens at ``tokens_per_s``, and completes; a share of
tasks fail ("model overloaded") or stop at ``input-required`` after the think time (a message
carrying that task's id answers it and the task goes on). ``concurrency_limit`` caps the tasks
generating at once, the rest wait as ``submitted`` (a model server's batch: a stream capacity
known by construction; ``GET /admin/load`` counts). ``rate_limited`` answers new messages
HTTP 429 with ``Retry-After`` for a while (card GETs, ``GetTask`` and ``CancelTask`` still work,
so tasks in flight can be finished or cancelled).

Everything is switchable at run time through ``POST /admin/fault`` (the keys of
:data:`FAULT_KEYS`), as on the other demo agents. The plan of a task is drawn up front by the
pure :func:`plan_task` and :func:`timeline`; the app only sleeps to each step's deadline, so
scheduling lag never accumulates across chunks.

Run one with ``python -m latcli.demo.assistant --id assistant-1 --port 8006``.
"""

# One concept a module: behaviour (what agents.yaml and /admin/fault set), schedule (the plan of
# one task, pure), wire (the A2A 1.0 bindings' shapes and errors), tasks (a task's record and its
# run against the clock), app (the handlers and the ASGI app), launch (the fleet's command line
# for one) and __main__ (the process).
