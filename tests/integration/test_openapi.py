"""The served OpenAPI document matches the routes and the error codes the pipeline really answers."""

from __future__ import annotations

from pathlib import Path

from tests.integration.gateway_harness import gateway_harness


async def test_openapi_lists_every_route_with_its_statuses_and_bodies(
    tmp_path: Path, nats_server: str
) -> None:
    async with gateway_harness(tmp_path, nats_server) as gw:
        response = await gw.client.get("/schema/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        routes = {(path, method) for path, ops in spec["paths"].items() for method in ops}
        served = {
            (route.path.replace("{message_id:str}", "{message_id}"), method.lower())
            for route in gw.gateway.app.routes
            for method in getattr(route, "methods", set())
            if not route.path.startswith("/schema") and method not in ("HEAD", "OPTIONS")
        }
        assert served <= routes
        submit = spec["paths"]["/v1/messages"]["post"]
        assert {"202", "207", "400", "401", "402", "403", "409", "422", "429", "451", "503"} <= set(
            submit["responses"]
        )
        single, batch = submit["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        assert {"to", "channel", "channels", "body", "from", "subject", "html"} <= set(single["properties"])
        step = single["properties"]["channels"]["anyOf"][0]["items"]
        assert sorted(step["properties"]["channel"]["enum"]) == [
            "email",
            "push",
            "sms",
            "telegram",
            "whatsapp",
        ]
        assert batch["properties"]["messages"]["maxItems"] == 1000
        assert {"401", "403", "404"} <= set(spec["paths"]["/v1/messages/{message_id}"]["get"]["responses"])
        error = spec["components"]["schemas"]
        assert any("ErrorBody" in name for name in error)
