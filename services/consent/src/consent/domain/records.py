"""The records the domain builds documents, copies and exports from (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Signature:
    signature_id: UUID
    participant_id: str
    study_id: str
    site_id: str
    version: int
    language: str
    document_sha256: str
    scopes: tuple[str, ...]
    meaning: str
    signed_at: datetime
    representative: dict[str, Any] | None = None
    countersigned_by: str | None = None
    countersigner_name: str | None = None
    countersign_meaning: str | None = None
    countersigned_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """What the API shows (the representative's name is the participant's own record,
        shown to them and to staff of the site, never published)."""
        return {
            "signature_id": str(self.signature_id),
            "participant_id": self.participant_id,
            "study_id": self.study_id,
            "site_id": self.site_id,
            "document_version": self.version,
            "language": self.language,
            "document_sha256": self.document_sha256,
            "scopes": list(self.scopes),
            "meaning": self.meaning,
            "signed_at": self.signed_at.isoformat(),
            "representative": self.representative,
            "countersignature": None
            if self.countersigned_at is None
            else {
                "by": self.countersigned_by,
                "name": self.countersigner_name,
                "meaning": self.countersign_meaning,
                "at": self.countersigned_at.isoformat(),
            },
        }


# The meaning of each signature (21 CFR 11.50(a)(3)), fixed by the service, not typed in.
PARTICIPANT_MEANING = (
    "I have read this information, had my questions answered, and I agree to take part "
    "in this study for the uses I selected."
)
REPRESENTATIVE_MEANING = {
    "legally_authorised_representative": "As the participant's legally authorised "
    "representative, I agree on their behalf to their taking part for the uses selected.",
    "witness": "I witnessed the consent discussion and the participant's signature.",
}
COUNTERSIGN_MEANING = (
    "I conducted the informed consent discussion and confirm the participant's consent."
)
