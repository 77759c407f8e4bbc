"""FHIR R4 `Consent` resources, checked with fhir.resources' R4B model (Consent is the
same in R4 and R4B; ePRO does the same for its resources, decision 0013). Pure.

One resource per participant: their latest signature (the document version, language
and SHA-256 it pins), the scopes over time as nested provisions (permit while in force,
deny after a withdrawal), the countersignature as verification. Participants, sites and
staff are named by pseudonymous identifiers only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from trialstream.events.consents import ConsentState

from consent.domain.records import Signature

PARTICIPANTS = "urn:trialstream:participant"
SITES = "urn:trialstream:site"
STAFF = "urn:trialstream:staff"
SCOPES = "urn:trialstream:consent-scope"
SHA256 = "urn:trialstream:fhir:document-sha256"


def _period(start: datetime, end: datetime | None) -> dict[str, str]:
    out = {"start": start.isoformat()}
    if end is not None:
        out["end"] = end.isoformat()
    return out


def consent_resource(signature: Signature, state: ConsentState | None) -> dict[str, Any]:
    scopes = state.scopes if state is not None else ()
    withdrawn = state is not None and state.withdrawn_at is not None
    provisions = [
        {
            "type": "permit" if s.until is None else "deny",
            "period": _period(s.since, s.until),
            "code": [{"coding": [{"system": SCOPES, "code": str(s.scope)}]}],
        }
        for s in scopes
    ]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": str(signature.signature_id),
        "status": "inactive" if withdrawn else "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "research",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent"}]}
        ],
        "patient": {"identifier": {"system": PARTICIPANTS, "value": signature.participant_id}},
        "dateTime": signature.signed_at.isoformat(),
        "performer": [{"identifier": {"system": PARTICIPANTS, "value": signature.participant_id}}],
        "organization": [{"identifier": {"system": SITES, "value": signature.site_id}}],
        "sourceReference": {
            "identifier": {
                "system": f"urn:trialstream:consent-document:{signature.study_id}",
                "value": f"{signature.version}/{signature.language}",
            },
            "extension": [{"url": SHA256, "valueString": signature.document_sha256}],
        },
        "policy": [{"uri": f"urn:trialstream:study:{signature.study_id}"}],
        "provision": {
            "type": "deny" if withdrawn else "permit",
            "period": _period(signature.signed_at, state.withdrawn_at if state else None),
            "provision": provisions,
        },
    }
    if signature.countersigned_at is not None:
        resource["verification"] = [
            {
                "verified": True,
                "verifiedWith": {
                    "identifier": {"system": STAFF, "value": signature.countersigned_by or ""}
                },
                "verificationDate": signature.countersigned_at.isoformat(),
            }
        ]
    return Consent.model_validate(resource).model_dump(mode="json", exclude_none=True)


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    return Bundle.model_validate(document).model_dump(mode="json", exclude_none=True)
