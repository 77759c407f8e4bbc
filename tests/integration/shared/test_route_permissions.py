"""Every route of every service against the permission matrix (README, *Staff identity
and permissions*): each service runs on the real broker and database, and each staff
route is called with a token of every role.

- `ROUTES` names, for every route in a service's OpenAPI, what it needs: an `Action` of the
  matrix, or a credential that is not a staff role (public, a device, the participant app,
  the retention receipt webhook, any signed-in person). A route missing from it fails the
  test, so a new route must be declared here.
- A role the matrix refuses gets 403 `role_not_allowed`, whatever the ids and the body.
- A role the matrix allows (granted for every site of the study) is never refused: any
  answer but 401 and 403 (the fake ids may well be 404, the empty body 422).
- The same role in another study, or at another site, never gets a 2xx (with real data
  they get 403 or 404: tests/integration/identity/test_studies.py and each service's
  own tests).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from helpers import serving
from staff_tokens import JWKS, KEY, staff_auth
from trialstream.identity import PERMISSIONS, Action, Grant, Role

pytestmark = pytest.mark.integration
ADMIN = "walker-admin"

PUBLIC, DEVICE, APP, RECEIPT, ANY_STAFF, STREAM = (
    "public",
    "device",
    "participant app",
    "receipt webhook",
    "any signed-in person",
    "stream",
)
OPS = {("GET", "/healthz"): PUBLIC, ("GET", "/readyz"): PUBLIC, ("GET", "/metrics"): PUBLIC}
READ, ACT, MANAGE = Action.READ_PARTICIPANT_DATA, Action.ACT_ON_ALERTS, Action.MANAGE_PARTICIPANTS

ROUTES: dict[str, dict[tuple[str, str], Action | str]] = {
    "identity": {
        **OPS,
        ("GET", "/.well-known/openid-configuration"): PUBLIC,
        ("GET", "/v1/jwks"): PUBLIC,
        ("POST", "/v1/token"): PUBLIC,
        ("POST", "/v1/logout"): ANY_STAFF,
        ("GET", "/v1/me"): ANY_STAFF,
        # people: a study admin of some study; which study is the grants' own (the body),
        # checked per grant (tests/integration/identity), so no other-study check here
        ("GET", "/v1/people"): Action.MANAGE_STUDY,
        ("POST", "/v1/people"): Action.MANAGE_STUDY,
        ("PUT", "/v1/people/{subject}/grants"): Action.MANAGE_STUDY,
        ("POST", "/v1/people/{subject}/revoke"): Action.MANAGE_STUDY,
        # studies: anyone signed in reads the studies they have a role in; changing one is
        # a study admin's (creating one a platform admin's), checked per study
        ("GET", "/v1/studies"): ANY_STAFF,
        ("GET", "/v1/studies/{study_id}"): ANY_STAFF,
        ("GET", "/v1/studies/{study_id}/versions"): ANY_STAFF,
        ("PUT", "/v1/studies/{study_id}"): Action.MANAGE_STUDY,
    },
    # the scoring in force is the platform's, no study's data: any signed-in person
    "anomaly": {
        **OPS,
        ("GET", "/v1/scoring"): ANY_STAFF,
        # brief SpO2 dips per day; study-wide roles only (anomaly knows no sites)
        ("GET", "/v1/participants/{participant_id}/night-summary"): READ,
    },
    "ingest": {
        **OPS,
        ("POST", "/v1/readings"): DEVICE,
        ("POST", "/v1/admin/participants"): MANAGE,
        ("POST", "/v1/admin/participants/{participant_id}/withdraw"): MANAGE,
        ("POST", "/v1/admin/devices"): MANAGE,
        ("POST", "/v1/admin/devices/{device_id}/revoke"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/readings"): READ,
        ("POST", "/v1/exports"): Action.EXPORT,
        ("GET", "/v1/exports"): Action.EXPORT,
        ("GET", "/v1/exports/{export_id}"): Action.EXPORT,
        ("GET", "/v1/exports/{export_id}/files/{name}"): Action.EXPORT,
    },
    "monitoring": {
        **OPS,
        ("GET", "/v1/me"): ANY_STAFF,
        ("GET", "/v1/alerts"): READ,
        ("GET", "/v1/alerts/stream"): STREAM,
        ("GET", "/v1/alerts/{alert_id}"): READ,
        ("POST", "/v1/alerts/{alert_id}/acknowledge"): ACT,
        ("POST", "/v1/alerts/{alert_id}/resolve"): ACT,
        ("GET", "/v1/alerts/{alert_id}/audit"): READ,
        ("GET", "/v1/participants/{participant_id}/timeline"): READ,
        ("GET", "/v1/sites/{site_id}/kris"): READ,
        ("GET", "/v1/participants/{participant_id}/kris"): READ,
        ("GET", "/v1/flags"): READ,
        ("POST", "/v1/flags/{flag_id}/close"): Action.CLOSE_FLAGS,
        ("GET", "/v1/studies/{study_id}/summary"): Action.READ_AGGREGATES,
    },
    "epro": {
        **OPS,
        ("GET", "/v1/questionnaires"): APP,
        ("GET", "/v1/questionnaires/{questionnaire_id}/versions/{version}"): APP,
        ("POST", "/v1/responses"): APP,
        ("POST", "/v1/responses/{response_id}/corrections"): APP,
        ("POST", "/v1/admin/participants/{participant_id}/app-credentials"): MANAGE,
        ("POST", "/v1/admin/participants/{participant_id}/app-credentials/revoke"): MANAGE,
        # a questionnaire version is platform-wide (a study file names the versions it
        # uses, and a published one never changes): a study admin of any study publishes
        ("POST", "/v1/admin/questionnaires"): Action.MANAGE_STUDY,
        # what ePRO runs of a study file's schedules, and what it skips: its study admins
        ("GET", "/v1/admin/study-schedules"): Action.MANAGE_STUDY,
        ("POST", "/v1/participants/{participant_id}/responses/{response_id}/corrections"): MANAGE,
        ("GET", "/v1/compliance"): READ,
        ("GET", "/v1/participants/{participant_id}/responses"): READ,
        ("GET", "/v1/participants/{participant_id}/responses.csv"): READ,
        ("GET", "/v1/fhir/Questionnaire/{questionnaire_id}"): ANY_STAFF,
        ("GET", "/v1/participants/{participant_id}/fhir/QuestionnaireResponse"): READ,
    },
    "telehealth": {
        **OPS,
        ("GET", "/v1/calendars/{token}.ics"): "calendar feed address",
        ("POST", "/v1/admin/staff"): MANAGE,
        ("PUT", "/v1/admin/sites/{site_id}"): Action.MANAGE_STUDY,
        ("PUT", "/v1/staff/{staff_id}/weekly-hours"): MANAGE,
        ("PUT", "/v1/staff/{staff_id}/exceptions/{on_date}"): MANAGE,
        ("DELETE", "/v1/staff/{staff_id}/exceptions/{on_date}"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/visits"): READ,
        ("GET", "/v1/participants/{participant_id}/slots"): READ,
        ("PUT", "/v1/participants/{participant_id}/baseline"): MANAGE,
        ("GET", "/v1/sites/{site_id}/schedule"): READ,
        ("POST", "/v1/calendar-feeds"): MANAGE,
        ("POST", "/v1/bookings"): MANAGE,
        ("GET", "/v1/bookings/{booking_id}"): READ,
        ("POST", "/v1/bookings/{booking_id}/reschedule"): MANAGE,
        ("POST", "/v1/bookings/{booking_id}/cancel"): MANAGE,
        ("POST", "/v1/bookings/{booking_id}/complete"): MANAGE,
        ("POST", "/v1/bookings/{booking_id}/no-show"): MANAGE,
        ("GET", "/v1/proposals"): READ,
        ("POST", "/v1/proposals/{proposal_id}/confirm"): MANAGE,
        ("POST", "/v1/proposals/{proposal_id}/dismiss"): MANAGE,
    },
    "retention": {
        **OPS,
        ("POST", "/v1/nudges/{nudge_id}/receipts"): RECEIPT,
        ("PUT", "/v1/admin/participants/{participant_id}/preferences"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/nudges"): READ,
        ("GET", "/v1/nudges/{nudge_id}"): READ,
        ("GET", "/v1/sites/{site_id}/outreach"): READ,
        ("GET", "/v1/sites/{site_id}/tasks"): READ,
        ("POST", "/v1/tasks/{task_id}/complete"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/local-inbox"): READ,
    },
    "consent": {
        **OPS,
        ("GET", "/v1/consent/document"): APP,
        ("POST", "/v1/consent/comprehension"): APP,
        ("POST", "/v1/consent/reauth"): APP,
        ("POST", "/v1/consent/signatures"): APP,
        ("GET", "/v1/consent/signatures/{signature_id}/copy"): APP,
        ("GET", "/v1/consent/me"): APP,
        ("POST", "/v1/consent/withdrawals"): APP,
        ("POST", "/v1/consent/documents"): Action.MANAGE_STUDY,
        ("GET", "/v1/consent/documents"): Action.READ_AGGREGATES,
        ("POST", "/v1/participants/{participant_id}/consent-credential"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/consent"): READ,
        ("POST", "/v1/participants/{participant_id}/consent/withdrawals"): MANAGE,
        ("POST", "/v1/consent/signatures/{signature_id}/countersign"): Action.SIGN,
        ("GET", "/v1/consent/outstanding"): READ,
        ("GET", "/v1/consent/fhir"): Action.EXPORT,
        ("POST", "/v1/consent/erasure"): APP,
        ("POST", "/v1/participants/{participant_id}/erasure"): MANAGE,
        ("GET", "/v1/participants/{participant_id}/erasure"): READ,
    },
    "intelligence": {
        **OPS,
        # uploads and referrals at the candidate's site; the ranked list and re-made
        # decisions to those who read participant data there; counts and forecasts to
        # every role of the study (sponsors included)
        ("POST", "/v1/candidates"): MANAGE,
        ("POST", "/v1/candidates/batch"): MANAGE,
        ("GET", "/v1/studies/{study_id}/sites/{site_id}/candidates"): READ,
        ("POST", "/v1/studies/{study_id}/candidates/{candidate_id}/referral"): MANAGE,
        ("POST", "/v1/studies/{study_id}/candidates/{candidate_id}/screening"): MANAGE,
        ("GET", "/v1/candidates/{candidate_id}/verification"): READ,
        ("GET", "/v1/studies/{study_id}/prescreening"): Action.READ_AGGREGATES,
        ("GET", "/v1/studies/{study_id}/forecast"): Action.READ_AGGREGATES,
        ("GET", "/v1/portfolio"): Action.READ_AGGREGATES,
        ("GET", "/v1/portfolio.csv"): Action.READ_AGGREGATES,
        ("GET", "/v1/studies/{study_id}/forecast.csv"): Action.READ_AGGREGATES,
        # the screen-failure model's report: no study's data
        ("GET", "/v1/screening-model"): ANY_STAFF,
    },
}


def _apps(kafka: str, database_url: str) -> dict[str, Callable[[], FastAPI]]:
    from anomaly.main import create_app as anomaly_app
    from anomaly.settings import AnomalySettings
    from consent.main import create_app as consent_app
    from consent.settings import ConsentSettings
    from epro.main import create_app as epro_app
    from epro.settings import EproSettings
    from identity.main import create_app as identity_app
    from identity.settings import IdentitySettings
    from ingest.main import create_app as ingest_app
    from ingest.settings import IngestSettings
    from intelligence.main import create_app as intelligence_app
    from intelligence.settings import IntelligenceSettings
    from monitoring.main import create_app as monitoring_app
    from monitoring.settings import MonitoringSettings
    from retention.main import create_app as retention_app
    from retention.settings import RetentionSettings
    from telehealth.main import create_app as telehealth_app
    from telehealth.settings import TelehealthSettings

    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database_url,
        "admin_token": ADMIN,
        "kafka_session_timeout_ms": 2000,
        "oidc_jwks": JWKS,
        "rate_limit_per_second": 0,
    }
    return {
        "identity": lambda: identity_app(
            IdentitySettings(**common, signing_key_pem=KEY.pem().decode("ascii"))
        ),
        "ingest": lambda: ingest_app(IngestSettings(**common)),
        "anomaly": lambda: anomaly_app(AnomalySettings(**common)),
        "monitoring": lambda: monitoring_app(MonitoringSettings(**common)),
        "epro": lambda: epro_app(EproSettings(**common, scheduler_enabled=False)),
        "telehealth": lambda: telehealth_app(TelehealthSettings(**common)),
        "retention": lambda: retention_app(RetentionSettings(**common)),
        "consent": lambda: consent_app(ConsentSettings(**common)),
        "intelligence": lambda: intelligence_app(IntelligenceSettings(**common)),
    }


@pytest.fixture
async def clients(kafka: str, database_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(serving(make()))
            for name, make in _apps(kafka, database_url).items()
        }


def _url(path: str) -> str:
    """The path with made-up ids: nothing they name exists."""
    fake = {
        "participant_id": "P-walk",
        "site_id": "site-walk",
        "device_id": "dev-walk",
        "subject": "nobody-walk",
        "questionnaire_id": "phq-9",
        "version": "1",
        "staff_id": "nurse-walk",
        "on_date": "2030-01-07",
        "token": "no-such-feed",
        "study_id": "no-such-study",
    }
    for name, value in fake.items():
        path = path.replace("{" + name + "}", value)
    while "{" in path:  # every other id is a UUID
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1 :]
    return path


def _token(role: Role, *, study: str = "default", site: str | None = None) -> dict[str, str]:
    grant = Grant(role, None, None) if role is Role.PLATFORM_ADMIN else Grant(role, study, site)
    return staff_auth(grants=[grant], signed_in_seconds_ago=0)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, auth: dict[str, str]
) -> httpx.Response:
    # the fake data is the default study's: a listing names it, as another study's staff
    # would have to in order to look at it
    params = {"from": "2026-01-01T00:00:00Z", "site": "site-walk", "study": "default"}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, _url(path), params=params, json=body, headers=auth)


async def test_every_route_is_declared_and_answers_each_role_as_the_matrix_says(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    problems: list[str] = []
    for service, client in clients.items():
        app_routes = {
            (method.upper(), path)
            for path, item in (await client.get("/openapi.json")).json()["paths"].items()
            for method in item
        }
        declared = ROUTES[service]
        for missing in sorted(app_routes - declared.keys()):
            problems.append(f"{service} {missing}: not declared in ROUTES")
        for gone in sorted(declared.keys() - app_routes):
            problems.append(f"{service} {gone}: declared but not served")
        for (method, path), needs in sorted(declared.items()):
            if not isinstance(needs, Action):
                continue
            where = f"{service} {method} {path}"
            for role in Role:
                r = await _call(client, method, path, _token(role))
                code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
                if role in PERMISSIONS[needs] and r.status_code in (401, 403):
                    problems.append(f"{where}: {role} may ({needs}) but got {r.status_code} {code}")
                if role not in PERMISSIONS[needs] and (r.status_code, code) != (
                    403,
                    "role_not_allowed",
                ):
                    problems.append(
                        f"{where}: {role} may not ({needs}) but got {r.status_code} {code}"
                    )
            allowed = sorted(PERMISSIONS[needs], key=list(Role).index)[0]
            if allowed is not Role.PLATFORM_ADMIN and service != "identity":
                other_study = await _call(
                    client, method, path, _token(allowed, study="other-study")
                )
                if other_study.status_code < 300:
                    problems.append(
                        f"{where}: {allowed} of another study got {other_study.status_code}"
                    )
                other_site = await _call(client, method, path, _token(allowed, site="site-other"))
                if other_site.status_code < 300:
                    problems.append(
                        f"{where}: {allowed} of another site got {other_site.status_code}"
                    )
    assert not problems, "\n".join(problems)


async def test_staff_routes_refuse_no_token_and_a_forged_one(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    forged = {
        "Authorization": "Bearer "
        + KEY.issue(
            issuer="http://elsewhere", audience="trialstream", subject="x", name="X", grants=[]
        )
    }
    for service, client in clients.items():
        for (method, path), needs in ROUTES[service].items():
            if not isinstance(needs, Action) and needs != ANY_STAFF:
                continue
            for auth in ({}, forged):
                r = await _call(client, method, path, auth)
                assert r.status_code == 401, f"{service} {method} {path}: {r.status_code}"
