from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from trialstream.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    max_readings_per_request: int = Field(default=5000, ge=1)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_clock_skew_seconds: float = Field(
        default=300.0, ge=0, description="How far measured_at may be ahead of the server clock."
    )
    # Exports (decision 0076): the files go here. Every replica that runs export jobs or
    # serves their downloads must see the same directory (a shared volume); an object
    # store is future work.
    export_dir: Path = Field(default=Path(".trialstream/exports"))
    export_poll_seconds: float = Field(default=2.0, gt=0, description="How often to look for jobs.")
    export_lease_seconds: float = Field(
        default=120.0, gt=0, description="A job whose replica was silent this long is taken over."
    )
    export_concurrency: int = Field(default=2, ge=1, description="Days of one job written at once.")
    export_jobs: bool = Field(default=True, description="Run export jobs in this replica.")
    # The archive's day partitions (decision 0074).
    archive_days_ahead: int = Field(
        default=7, ge=1, description="Days after today whose archive partition is kept ready."
    )
    archive_maintenance_seconds: float = Field(
        default=3600.0, gt=0, description="How often partitions are prepared (and detached)."
    )
    archive_detach_after_days: int | None = Field(
        default=None,
        ge=2,
        description="Detach archive partitions of days older than this (for tiering); "
        "unset: never. A reading retried after its day was detached is archived again.",
    )
    # Tiering of old days to Parquet (decision 0077). Off unless set: every replica must
    # see the same tier (a shared volume or an object store), and a reading of a tiered
    # day arriving later is refused (`day_archived`), so the age must exceed how long a
    # device may hold readings back.
    archive_tier_after_days: int | None = Field(
        default=None,
        ge=3,
        description="Move the archive's days older than this to Parquet files; unset: never.",
    )
    archive_tier_url: str = Field(
        default=".trialstream/archive",
        description="Where tiered days go: a directory, file:///..., s3://bucket/prefix "
        "(needs s3fs: trialstream-ingest[s3]) or any fsspec URL.",
    )
    archive_tier_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options as JSON, e.g. "
        '{"endpoint_url": "http://minio:9000"} (keys best come from the store\'s own env).',
    )
    archive_tier_buckets: int = Field(
        default=16, ge=1, le=4096, description="Participant-hash buckets per study and day."
    )
    archive_tier_lease_seconds: float = Field(
        default=900.0, gt=0, description="A day whose replica was silent this long is redone."
    )
