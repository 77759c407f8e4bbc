"""The embedded issuer on the real broker and PostgreSQL: people and their roles, sign-in,
refresh, logout and revocation reaching the verifier through the staff-access topic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from helpers import eventually, read_topic, serving, unique_id
from identity.main import create_app
from identity.settings import IdentitySettings
from trialstream.events.topics import Topic

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer identity-admin"}
PASSWORD = "correct horse battery"


@pytest.fixture
async def issuer(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IdentitySettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        admin_token="identity-admin",
        kafka_session_timeout_ms=2000,
        max_failed_sign_ins=3,
    )
    async with serving(create_app(settings)) as client:
        yield client


async def person(
    client: httpx.AsyncClient, grants: list[dict[str, str]], by: dict[str, str] = ADMIN
) -> str:
    subject = unique_id("staff")
    body = {"subject": subject, "name": f"Dr {subject}", "password": PASSWORD, "grants": grants}
    r = await client.post("/v1/people", json=body, headers=by)
    assert r.status_code == 201, r.text
    return subject


async def sign_in(
    client: httpx.AsyncClient, subject: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/v1/token", json={"grant_type": "password", "username": subject, "password": password}
    )


def bearer(tokens: httpx.Response) -> dict[str, str]:
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


async def test_a_signed_in_person_carries_their_roles_in_a_token_the_published_keys_verify(
    issuer: httpx.AsyncClient,
) -> None:
    subject = await person(issuer, [{"role": "investigator", "study": "CARDIO", "site": "s1"}])
    tokens = await sign_in(issuer, subject)
    discovery = (await issuer.get("/.well-known/openid-configuration")).json()
    assert discovery["jwks_uri"].endswith("/v1/jwks")
    keys = (await issuer.get("/v1/jwks")).json()
    access = tokens.json()["access_token"]
    key = jwt.PyJWKSet.from_dict(keys).keys[0].key
    claims = jwt.decode(access, key, algorithms=["EdDSA"], audience="trialstream")
    assert claims["sub"] == subject
    assert claims["name"] == f"Dr {subject}"
    assert claims["trialstream_roles"] == [
        {"role": "investigator", "study": "CARDIO", "site": "s1"}
    ]
    assert claims["iss"] == discovery["issuer"]
    me = await issuer.get("/v1/me", headers=bearer(tokens))
    assert me.json()["subject"] == subject
    assert me.json()["session_id"] == claims["sid"]
    # A form-encoded OAuth 2.0 request works the same; a refresh keeps the sign-in time.
    r = await issuer.post(
        "/v1/token",
        content=f"grant_type=refresh_token&refresh_token={tokens.json()['refresh_token']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    refreshed = jwt.decode(
        r.json()["access_token"], key, algorithms=["EdDSA"], audience="trialstream"
    )
    assert refreshed["auth_time"] == claims["auth_time"]
    assert refreshed["sid"] == claims["sid"]
    # The old refresh token was rotated away.
    again = await issuer.post(
        "/v1/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
    )
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_grant"


async def test_a_study_admin_manages_their_own_study_only(issuer: httpx.AsyncClient) -> None:
    admin = await person(issuer, [{"role": "study_admin", "study": "CARDIO"}])
    auth = bearer(await sign_in(issuer, admin))
    await person(issuer, [{"role": "site_staff", "study": "CARDIO", "site": "s1"}], by=auth)
    for grants in (
        [{"role": "site_staff", "study": "ONCO", "site": "s1"}],
        [{"role": "platform_admin"}],
    ):
        body = {"subject": unique_id("x"), "name": "X", "password": PASSWORD, "grants": grants}
        r = await issuer.post("/v1/people", json=body, headers=auth)
        assert r.status_code == 403, r.text
    nurse = await person(issuer, [{"role": "site_staff", "study": "CARDIO", "site": "s1"}])
    nurse_auth = bearer(await sign_in(issuer, nurse))
    r = await issuer.get("/v1/people", headers=nurse_auth)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "role_not_allowed"
    listed = {p["subject"] for p in (await issuer.get("/v1/people", headers=auth)).json()["people"]}
    assert nurse in listed
    assert admin in listed


async def test_bad_requests_name_the_field(issuer: httpx.AsyncClient) -> None:
    r = await issuer.post("/v1/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 422, r.text
    body = {
        "subject": "a@b.example",
        "name": "X",
        "password": "short",
        "grants": [{"role": "monitor"}],
    }
    r = await issuer.post("/v1/people", json=body, headers=ADMIN)
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"subject", "password"} <= fields, fields


async def test_logout_ends_the_session_everywhere_and_revocation_voids_every_token(
    issuer: httpx.AsyncClient, kafka: str
) -> None:
    subject = await person(issuer, [{"role": "monitor", "study": "CARDIO"}])
    first, second = await sign_in(issuer, subject), await sign_in(issuer, subject)
    assert (await issuer.post("/v1/logout", headers=bearer(first))).status_code == 204

    async def refused(tokens: httpx.Response, code: str) -> bool:
        r = await issuer.get("/v1/me", headers=bearer(tokens))
        return r.status_code == 401 and r.json()["error"]["code"] == code

    await eventually(lambda: refused(first, "session_ended"), timeout=10)
    assert (await issuer.get("/v1/me", headers=bearer(second))).status_code == 200

    r = await issuer.post(
        f"/v1/people/{subject}/revoke", json={"reason": "left the CRO"}, headers=ADMIN
    )
    assert r.status_code == 204, r.text
    await eventually(lambda: refused(second, "access_revoked"), timeout=10)
    assert (await sign_in(issuer, subject)).status_code == 401
    records = await read_topic(
        kafka, Topic.STAFF_ACCESS, match=lambda e: e.get("subject") == subject
    )
    assert {e["kind"] for e in records} == {"session_ended", "access_revoked"}
    assert all("name" not in e and "password" not in str(e) for e in records)


async def test_wrong_passwords_lock_the_account_and_unknown_names_read_the_same(
    issuer: httpx.AsyncClient,
) -> None:
    subject = await person(issuer, [{"role": "monitor", "study": "CARDIO"}])
    unknown = await sign_in(issuer, "nobody-here")
    wrong = await sign_in(issuer, subject, "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"] == wrong.json()["error"]
    for _ in range(2):
        await sign_in(issuer, subject, "not the password")
    locked = await sign_in(issuer, subject)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
