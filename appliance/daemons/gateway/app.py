"""The gateway's HTTP app: health now; `/v1/messages` arrives with the pipeline."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar, MediaType, Response, get
from litestar.openapi import OpenAPIConfig

from appliance import __version__


def create_gateway_app(*, nats_connected: Callable[[], bool], node: str) -> Litestar:
    @get("/healthz", media_type=MediaType.JSON, summary="Liveness and bus connectivity")
    async def healthz() -> Response[dict[str, object]]:
        connected = nats_connected()
        body: dict[str, object] = {
            "status": "ok" if connected else "degraded",
            "node": node,
            "nats": connected,
        }
        return Response(body, status_code=200 if connected else 503)

    return Litestar(
        route_handlers=[healthz],
        openapi_config=OpenAPIConfig(title="Hermes REST API", version=__version__),
    )
