"""The floor of the API benchmarks: a bare ASGI application under daphne, answering every
request with a small fixed JSON body at once (no Django, no database). ``bench/read_api.py``
runs it beside the real server, in the same number of processes, so its figures show what
daphne and the load generator cost on this machine at that moment.

    python -m daphne -b 127.0.0.1 -p 8000 bench._hello_asgi:app
"""

BODY = b'{"hello": "world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
