"""Staff identity (issue 15, decision 0071): tokens signed by the embedded issuer are
verified locally; forged, expired, misdirected, revoked or logged-out tokens are refused;
roles answer per study and site from one permission matrix."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from trialstream.errors import Kind, Refused
from trialstream.identity import (
    PERMISSIONS,
    SESSION_MEMORY_SECONDS,
    Action,
    Grant,
    Revocations,
    Role,
    SigningKey,
    TokenVerifier,
)

ISSUER, AUDIENCE = "http://127.0.0.1:8000", "trialstream"
NURSE = [Grant(Role.SITE_STAFF, "study-a", "site-a1")]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def verifier(key: SigningKey, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=key.jwks(), **kwargs)


def token(key: SigningKey, **kwargs: Any) -> str:
    claims: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "subject": "u-1042",
        "name": "Nurse One",
        "grants": NURSE,
    }
    return key.issue(**(claims | kwargs))


def refused(check: Any) -> str:
    with pytest.raises(Refused) as caught:
        check()
    assert caught.value.kind is Kind.UNAUTHORIZED
    return caught.value.code


def test_a_token_from_the_issuer_becomes_the_person_with_their_grants(key: SigningKey) -> None:
    who = verifier(key).verify(token(key, session_id="s-1"))
    assert (who.subject, who.name, who.session_id) == ("u-1042", "Nurse One", "s-1")
    assert who.grants == tuple(NURSE)
    assert who.actor == "staff:u-1042"


def test_the_key_survives_a_restart_through_its_pem(key: SigningKey) -> None:
    again = SigningKey.from_pem(key.pem())
    assert again.kid == key.kid
    assert verifier(again).verify(token(key)).subject == "u-1042"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": "another-app"}, "invalid_token"),
        ({"issuer": "https://evil.example"}, "invalid_token"),
        ({"ttl_seconds": -120}, "token_expired"),
    ],
)
def test_misdirected_or_expired_tokens_are_refused(
    key: SigningKey, change: dict[str, Any], code: str
) -> None:
    assert refused(lambda: verifier(key).verify(token(key, **change))) == code


def test_a_token_signed_by_another_key_is_refused(key: SigningKey) -> None:
    forged = token(SigningKey.generate())
    assert refused(lambda: verifier(key).verify(forged)) == "invalid_token"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_an_edited_payload_breaks_the_signature(key: SigningKey) -> None:
    header, payload, signature = token(key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["trialstream_roles"] = [{"role": "platform_admin"}]
    edited = f"{header}.{_b64(claims)}.{signature}"
    assert refused(lambda: verifier(key).verify(edited)) == "invalid_token"


def test_alg_none_and_the_public_key_as_an_hmac_secret_are_refused(key: SigningKey) -> None:
    claims = jwt.decode(token(key), options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'kid': key.kid})}.{_b64(claims)}."
    assert refused(lambda: verifier(key).verify(unsigned)) == "invalid_token"
    public = json.dumps(key.jwks()["keys"][0]).encode()  # what an attacker can read
    signing_input = f"{_b64({'alg': 'HS256', 'kid': key.kid})}.{_b64(claims)}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert refused(lambda: verifier(key).verify(confused)) == "invalid_token"


def test_unreadable_roles_are_refused_not_guessed(key: SigningKey) -> None:
    claims = jwt.decode(token(key), options={"verify_signature": False})
    for roles in ("site_staff", [{"role": "site_staff"}], [{"role": "owner", "study": "s"}]):
        bad = jwt.encode(
            claims | {"trialstream_roles": roles},
            key._key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        )
        assert refused(lambda bad=bad: verifier(key).verify(bad)) == "invalid_token"


def test_logout_ends_the_session_and_revocation_voids_earlier_tokens(key: SigningKey) -> None:
    revocations = Revocations()
    check = verifier(key, revocations=revocations)
    issued = time.time() - 10
    first = token(key, session_id="s-1", now=issued)
    other = token(key, session_id="s-2", now=issued)
    revocations.end_session("s-1")
    assert refused(lambda: check.verify(first)) == "session_ended"
    assert check.verify(other).session_id == "s-2"
    revocations.revoke("u-1042", at=issued + 1)
    assert refused(lambda: check.verify(other)) == "access_revoked"
    assert check.verify(token(key, session_id="s-3")).session_id == "s-3"  # signed in again


def test_logouts_are_remembered_for_a_day_not_for_the_whole_trial() -> None:
    revocations = Revocations()
    now = time.time()
    revocations.end_session("yesterday-morning", at=now - SESSION_MEMORY_SECONDS - 60)
    revocations.end_session("an-hour-ago", at=now - 3600)
    assert list(revocations.sessions) == ["an-hour-ago"]
    for n in range(2048):  # pruned as logouts accumulate
        revocations.end_session(f"s-{n}", at=now - SESSION_MEMORY_SECONDS + 0.5)
    time.sleep(1)
    revocations.end_session("just-now")
    for n in range(1023):
        revocations.end_session(f"t-{n}")
    assert "s-0" not in revocations.sessions
    assert "an-hour-ago" in revocations.sessions


def test_roles_answer_per_study_and_site() -> None:
    key = SigningKey.generate()
    grants = [
        Grant(Role.SITE_STAFF, "study-a", "site-a1"),
        Grant(Role.MONITOR, "study-b"),
        Grant(Role.SPONSOR, "study-c"),
    ]
    who = verifier(key).verify(token(key, grants=grants))
    assert who.allows(Action.ACT_ON_ALERTS, "study-a", "site-a1")
    assert not who.allows(Action.ACT_ON_ALERTS, "study-a", "site-a2")  # another site
    assert not who.allows(Action.READ_PARTICIPANT_DATA, "study-z")  # another study
    assert who.allows(Action.READ_PARTICIPANT_DATA, "study-b", "site-b7")  # a CRA reads
    assert not who.allows(Action.ACT_ON_ALERTS, "study-b", "site-b7")  # and acts on nothing
    assert who.allows(Action.READ_AGGREGATES, "study-c")
    assert not who.allows(Action.READ_PARTICIPANT_DATA, "study-c")  # sponsors: aggregates
    assert who.sites("study-a") == {"site-a1"}
    assert who.sites("study-b") is None


def test_only_platform_admins_may_hold_a_grant_for_every_study() -> None:
    assert Grant.parse({"role": "platform_admin"}).study_id is None
    with pytest.raises(ValueError, match="must name its study"):
        Grant.parse({"role": "study_admin"})


def test_step_up_asks_for_a_recent_sign_in(key: SigningKey) -> None:
    now = time.time()
    who = verifier(key).verify(token(key, auth_time=now - 600, now=now))
    assert not who.authenticated_within(300, now=now)
    assert who.authenticated_within(900, now=now)


def test_every_action_has_roles_and_signing_is_the_narrowest() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(PERMISSIONS[a] for a in Action)
    assert PERMISSIONS[Action.SIGN] <= PERMISSIONS[Action.ACT_ON_ALERTS]
    assert Role.SPONSOR not in PERMISSIONS[Action.READ_PARTICIPANT_DATA]
    assert Role.MONITOR not in PERMISSIONS[Action.ACT_ON_ALERTS] | PERMISSIONS[Action.SIGN]


def test_the_audit_names_the_role_and_study_even_where_no_study_is_given() -> None:
    from trialstream.identity import Principal
    from trialstream.staff import acting

    now = time.time()
    investigator = Principal(
        "inv-1", "Dr A", (Grant(Role.INVESTIGATOR, "CARDIO-HF", "site-b"),), "s", now, now
    )
    assert acting(investigator, "CARDIO-HF") == {
        "name": "Dr A",
        "role": "investigator",
        "study": "CARDIO-HF",
    }
    # a site's own resources (a clinician's hours) are of no one study: the grants say it
    assert acting(investigator) == {"name": "Dr A", "role": "investigator", "study": "CARDIO-HF"}
