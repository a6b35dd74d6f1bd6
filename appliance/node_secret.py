"""The node's secret key file: created once (mode 0600), read by the daemons that hash credentials."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.domain.credentials import new_node_secret
from appliance.errors import StartupError

_MIN_BYTES = 32


def ensure_node_secret(path: str) -> None:
    """Create the secret file if it does not exist yet; never overwrite one."""
    file = Path(path)
    if file.exists():
        load_node_secret(path)
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StartupError(f"cannot create secret file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(new_node_secret().hex().encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_node_secret(path: str) -> bytes:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except OSError as exc:
        raise StartupError(f"cannot read secret file {path}: {exc.strerror}") from exc
    except ValueError:
        raise StartupError(f"secret file {path} is not hex") from None
    if len(secret) < _MIN_BYTES:
        raise StartupError(f"secret file {path} holds fewer than {_MIN_BYTES} bytes")
    return secret
