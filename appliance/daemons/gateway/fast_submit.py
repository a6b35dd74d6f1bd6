"""`POST /v1/messages` served in front of Litestar, as a bare ASGI handler.

Submitting messages is the gateway's hot path: a profile under load put a third of the worker's time
in the framework's per-request machinery (routing, middleware stack, exit stacks, header and response
objects) around a handler that only passes the raw body to `Ingress.submit`. This handler does the
same job with none of it: it reads the two headers and the body, runs the pipeline and writes the
`Answer` as JSON. Everything else (every other route, other methods on this path, `/schema`, the
lifespan) goes to the Litestar app, which still declares `POST /v1/messages` so that the OpenAPI
document, the documented contract, stays what it was.

The answers are the ones the Litestar route gave: the pipeline's `Answer` (status, JSON body,
headers), 413 for a body over `max_body` bytes (Litestar's limit), and the framework's 500 shape for
an unexpected error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from appliance.daemons.gateway.ingress import Answer, Ingress
from appliance.logs import get_logger

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

MAX_BODY = 10_000_000  # Litestar's default request_max_body_size, which the route had
PATH = "/v1/messages"
log = get_logger("hermes.gateway")
_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")


class _TooLarge(Exception):
    pass


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message, "layer": "edge", "details": {}}})


class FastSubmit:
    """ASGI app: `POST /v1/messages` straight to the pipeline, anything else to `app`."""

    def __init__(self, app: ASGIApp, ingress: Ingress, *, max_body: int = MAX_BODY) -> None:
        self._app = app
        self._ingress = ingress
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        authorization: str | None = None
        idempotency_key: str | None = None
        declared = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                if idempotency_key is None:
                    idempotency_key = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        if declared > self._max_body:
            await _send(send, _error(413, "payload_too_large", f"the body exceeds {self._max_body} bytes"))
            return
        try:
            body = await self._body(receive)
        except _TooLarge:
            await _send(send, _error(413, "payload_too_large", f"the body exceeds {self._max_body} bytes"))
            return
        if body is None:  # the client went away
            return
        try:
            answer = await self._ingress.submit(
                authorization=authorization, idempotency_key=idempotency_key, body=body
            )
        except Exception as exc:
            log.error("submit failed", action="gateway.submit_error", error=repr(exc))
            answer = _error(500, "error", "internal error")
        await _send(send, answer)

    async def _body(self, receive: Receive) -> bytes | None:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > self._max_body:
                raise _TooLarge
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)


async def _send(send: Send, answer: Answer) -> None:
    payload = _ENCODER.encode(answer.body)
    headers = [_JSON, (b"content-length", str(len(payload)).encode())]
    for name, value in answer.headers.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
