"""Publishing consent documents (study admins) and reading the current one (participants).

A version is immutable: publishing the same (study, version, site, language) again with
the same text answers as before; another text is 409 `version_published`. A new version
must not be older than the study's newest. A version that requires re-consent (a protocol
amendment) announces `reconsent_due` for every participant who signed an earlier one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from trialstream import audit
from trialstream.errors import Kind, Refused, about_field
from trialstream.identity import Principal
from trialstream.staff import audited_as
from trialstream.studies import Module, StudyRegistry

from consent import repository
from consent.domain import scopes
from consent.domain.documents import NewDocument, site_key
from consent.service.announce import announce


def check_study(studies: StudyRegistry, doc: NewDocument) -> None:
    study = studies.get(doc.study_id)
    if study is None:
        raise about_field(
            Kind.INVALID, "unknown_study", f"no study '{doc.study_id}'", "study_id", "unknown"
        )
    if not study.enables(Module.CONSENT):
        raise Refused(
            Kind.CONFLICT,
            "module_not_enabled",
            f"study '{doc.study_id}' does not enable the consent module (its study file)",
        )
    if doc.site_id is not None and study.site(doc.site_id) is None:
        raise about_field(
            Kind.INVALID,
            "unknown_site",
            f"study '{doc.study_id}' declares no site '{doc.site_id}'",
            "site_id",
            "not a site of the study",
        )


async def publish(
    pool: asyncpg.Pool, studies: StudyRegistry, by: Principal, doc: NewDocument
) -> tuple[bool, dict[str, Any]]:
    """(newly published, the document's summary)."""
    check_study(studies, doc)
    body, site = doc.body(), site_key(doc.site_id)
    summary = {
        "study_id": doc.study_id,
        "version": doc.version,
        "site_id": site,
        "language": doc.language,
        "sha256": body.sha256(),
        "requires_reconsent": doc.requires_reconsent,
        "reconsent_by": None if doc.reconsent_by is None else doc.reconsent_by.isoformat(),
    }
    async with pool.acquire() as conn, conn.transaction():
        # one publisher of a study at a time: the version check and the insert agree
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('consent:' || $1))", doc.study_id)
        existing = await repository.document(conn, doc.study_id, doc.version, site, doc.language)
        if existing is not None:
            if existing[1] != body.sha256():
                raise Refused(
                    Kind.CONFLICT,
                    "version_published",
                    f"version {doc.version} ({site}, {doc.language}) is published with "
                    "another text; a published version never changes: publish a new version",
                )
            return False, summary
        newest = await repository.max_version(conn, doc.study_id)
        if newest is not None and doc.version < newest:
            raise about_field(
                Kind.CONFLICT,
                "older_version",
                f"version {newest} is published; a new text is version {newest} or later",
                "version",
                f"at least {newest}",
            )
        await repository.insert_document(
            conn,
            study_id=doc.study_id,
            version=doc.version,
            site_id=site,
            language=doc.language,
            body=body,
            requires_reconsent=doc.requires_reconsent,
            reconsent_by=doc.reconsent_by,
            published_by=by.actor,
        )
        await audit.record(
            conn,
            **audited_as(by, doc.study_id),
            action="consent_document.published",
            entity="consent_document",
            entity_id=f"{doc.study_id}/{doc.version}/{site}/{doc.language}",
            new=summary,
        )
        if doc.requires_reconsent and doc.reconsent_by is not None:
            await _ask_for_reconsent(conn, doc, site)
    return True, summary


async def _ask_for_reconsent(conn: Any, doc: NewDocument, site: str) -> None:
    """Everyone in the study (at the site) who signed an earlier version and has not
    withdrawn: `reconsent_due`, once per version (a second language changes nothing)."""
    assert doc.reconsent_by is not None
    now = datetime.now(UTC)
    for row in await repository.standing(conn, doc.study_id, None if site == "*" else site):
        if row["signed_version"] is None or row["signed_version"] >= doc.version:
            continue
        before = await repository.state(conn, row["participant_id"])
        if before is None or before.withdrawn_at is not None:
            continue
        if before.reconsent_version == doc.version:
            continue
        await announce(conn, scopes.reconsent_due(before, doc.version, doc.reconsent_by, now))


async def current_for(pool: asyncpg.Pool, participant_id: str, language: str | None) -> Any:
    """The newest version for the participant's site, in `language` (else the only one,
    or 404 listing the languages there are)."""
    who = await repository.participant(pool, participant_id)
    if who is None:
        raise Refused(Kind.NOT_FOUND, "unknown_participant", "not enrolled here yet")
    rows = await repository.current_documents(pool, who["study_id"], who["site_id"])
    languages = sorted({r["language"] for r in rows})
    chosen = [r for r in rows if r["language"] == language] if language else rows[:1]
    if not chosen:
        raise Refused(
            Kind.NOT_FOUND,
            "no_document",
            "no consent document for your study"
            + (f" in '{language}'; there is: {', '.join(languages)}" if languages else ""),
        )
    return chosen[0], languages
