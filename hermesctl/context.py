"""The global options every command shares, kept on typer's context object."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from hermesctl.client import AdminClient, client_from_options


@dataclass
class Options:
    config: str | None
    admin_url: str | None
    _client: AdminClient | None = field(default=None, repr=False)

    def client(self) -> AdminClient:
        if self._client is None:
            self._client = client_from_options(self.config, self.admin_url)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def client(ctx: typer.Context) -> AdminClient:
    root = ctx.find_root()
    options: Options = ctx.ensure_object(Options) if ctx.obj is None else root.obj
    if options._client is None:
        root.call_on_close(options.close)
    return options.client()
