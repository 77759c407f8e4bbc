from __future__ import annotations

from pathlib import Path

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
