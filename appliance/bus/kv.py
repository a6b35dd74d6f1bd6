"""Opening the JetStream KV buckets Hermes keeps (idempotency claims, rate buckets, SMPP parts, ...).

Each bucket is created on first use with one value per key, file storage and its own TTL; an existing
bucket is used as it is, so a restart never changes what another process already relies on.
"""

from __future__ import annotations

from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue


async def open_bucket(js: JetStreamContext, bucket: str, *, ttl_s: float, description: str) -> KeyValue:
    """The bucket `bucket`, created (history 1, file storage, `ttl_s` per key) if it does not exist."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=bucket, history=1, ttl=ttl_s, storage=StorageType.FILE, description=description
            )
        )
