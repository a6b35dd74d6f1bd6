"""The admin API client: the only way hermesctl reaches a node.

It finds the node from the config (`--config`, `$HERMES_CONFIG`, /etc/hermes/hermes.toml): the unix
socket by default, or `--admin-url` with an operator token (`$HERMES_ADMIN_TOKEN`) for a remote one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from appliance.config import DEFAULT_CONFIG_PATH, load_config
from appliance.errors import ConfigError
from hermesctl.errors import ExitCode, fail

_STATUS_EXIT = {
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    422: ExitCode.INVALID,
    400: ExitCode.INVALID,
    401: ExitCode.UNAUTHORIZED,
}


class AdminClient:
    def __init__(
        self,
        *,
        socket_path: str | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._where = url or f"the admin socket {socket_path}"
        self._socket_path = socket_path
        if url:
            self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        else:
            transport = httpx.HTTPTransport(uds=socket_path)
            self._http = httpx.Client(
                transport=transport, base_url="http://hermes", headers=headers, timeout=timeout_s
            )

    def close(self) -> None:
        """Close the pooled connection (hermesctl calls it when the command ends)."""
        self._http.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as exc:
            hint = "is hermesd running? (make run, or systemctl start hermesd)"
            if self._socket_path and not Path(self._socket_path).exists():
                fail(
                    f"Hermes is not running: no admin socket at {self._socket_path}; {hint}",
                    ExitCode.NOT_RUNNING,
                )
            fail(
                f"Hermes is not running or not reachable at {self._where} ({exc}); {hint}",
                ExitCode.NOT_RUNNING,
            )
        except PermissionError:
            fail(
                f"permission denied on {self._where}: run as root or as a member of the hermes group",
                ExitCode.UNAUTHORIZED,
            )
        except httpx.HTTPError as exc:
            fail(f"admin API at {self._where} failed: {exc}", ExitCode.ERROR)
        try:
            body = response.json()
        except ValueError:
            fail(f"admin API answered {response.status_code} without JSON", ExitCode.ERROR)
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            fail(
                str(error.get("message") or f"HTTP {response.status_code}"),
                _STATUS_EXIT.get(response.status_code, ExitCode.ERROR),
            )
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def client_from_options(config_path: str | None, admin_url: str | None) -> AdminClient:
    token = os.environ.get("HERMES_ADMIN_TOKEN")
    if admin_url:
        return AdminClient(url=admin_url, token=token)
    path = config_path or os.environ.get("HERMES_CONFIG") or DEFAULT_CONFIG_PATH
    try:
        config = load_config(path)
    except ConfigError as exc:
        hint = " (pass --config FILE or set HERMES_CONFIG)" if exc.reason == "no such file" else ""
        fail(f"{exc}{hint}", ExitCode.USAGE)
    return AdminClient(socket_path=config.admin.socket, token=token)
