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


def client(ctx: typer.Context) -> AdminClient:
    options: Options = ctx.ensure_object(Options) if ctx.obj is None else ctx.find_root().obj
    return options.client()
