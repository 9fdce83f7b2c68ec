"""The live event stream: published events pushed to SSE and WebSocket clients as they happen.

    publish_pending ──(Redis doorbell, or the poll)──> Hub (one per process/event loop)
                                                        │ reads new events once, renders once
                  Subscriber (one per client) <─────────┘ bounded buffer; full = dropped
                       │ replays its backlog from the outbox first (webhooks.feed)
                 SSE view / WebSocket consumer ── writes, watching the socket's unsent bytes

Modules: ``hub`` (the shared reader), ``subscriber`` (replay then live, exactly once),
``backlog`` (how much a client has not read yet), ``params`` (query parameters of both
transports), ``sse`` (the text/event-stream body).
"""
