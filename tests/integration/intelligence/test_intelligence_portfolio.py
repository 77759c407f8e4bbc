"""The portfolio against the real broker and PostgreSQL: enrolments read from the
participants topic become per-site early-warning KRIs (below forecast) in the JSON, the
CSV and the server-rendered page; a sponsor sees their studies only, a site role its
sites; the page names no participant."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from helpers import eventually, serving, unique_id
from intelligence.main import create_app
from intelligence.settings import IntelligenceSettings
from staff_tokens import JWKS, staff_auth
from trialstream.staff import SESSION_COOKIE

from tests.integration.intelligence.enrolments import enrolled_study

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(kafka: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntelligenceSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        oidc_jwks=JWKS,
        kafka_session_timeout_ms=2000,
    )
    async with serving(create_app(settings)) as client:
        await eventually(lambda: _ready(client))
        yield client


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_a_lagging_site_is_red_in_json_csv_and_page_and_no_participant_is_named(
    app: httpx.AsyncClient, kafka: str
) -> None:
    a, b, c, lagging = (unique_id("site") for _ in range(4))
    counts = {a: 20, b: 16, c: 18, lagging: 0}
    study, participants = await enrolled_study(kafka, counts)
    other, _ = await enrolled_study(kafka, {unique_id("site"): 3, unique_id("site"): 5})
    sponsor = staff_auth(None, "sponsor", study=study)

    async def portfolio() -> dict[str, Any] | None:
        r = await app.get("/v1/portfolio", headers=sponsor)
        assert r.status_code == 200, r.text
        studies = r.json()["studies"]
        return studies[0] if studies and studies[0]["enrolled"] == 54 else None

    made = await eventually(portfolio, timeout=30)
    assert made["study_id"] == study  # the other study is not the sponsor's
    sites = {s["site_id"]: s for s in made["sites"]}
    assert sites[lagging]["below_forecast"] == "red"
    assert sites[lagging]["expected_to_date"]["lower"] > 0
    assert {sites[s]["below_forecast"] for s in (a, b, c)} <= {"green", "amber"}
    assert made["below_forecast"] == "red"

    r = await app.get(f"/v1/studies/{study}/forecast", headers=sponsor)
    assert {s["site_id"]: s["below_forecast"] for s in r.json()["sites"]} == {
        s: sites[s]["below_forecast"] for s in counts
    }

    r = await app.get("/v1/portfolio.csv", headers=sponsor)
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["site_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows[""]["study_id"] == study
    assert rows[""]["below_forecast"] == "red"
    assert rows[lagging]["below_forecast"] == "red"
    assert rows[lagging]["expected_to_date_lower"] == str(
        sites[lagging]["expected_to_date"]["lower"]
    )

    # the page, with the session cookie the dashboard's login sets
    page = await app.get("/portfolio", headers=_cookie(sponsor))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert study in text
    assert other not in text
    row = _row(text, lagging)
    assert "light red" in row
    assert ">0<" in row
    assert f">{sites[lagging]['expected_to_date']['median']}<" in row
    for site in (a, b, c):
        assert f">{counts[site]}<" in _row(text, site)
    assert re.search(r"Enrolled <strong class=\"enrolled\">54</strong> of <strong", text)
    assert "<svg" in text
    assert text.count('class="enrolled-dot') == 4
    assert not any(p in text for p in participants)

    drill = await app.get(f"/portfolio/{study}/sites/{a}", headers=_cookie(sponsor))
    assert drill.status_code == 200
    assert f'<td class="enrolled">{counts[a]}</td>' in drill.text
    assert f'<td class="expected">{sites[a]["expected_to_date"]["median"]}</td>' in drill.text
    assert not any(p in drill.text for p in participants)


async def test_another_studys_sponsor_and_another_sites_staff_see_nothing_of_it(
    app: httpx.AsyncClient, kafka: str
) -> None:
    a, b = unique_id("site"), unique_id("site")
    study, _ = await enrolled_study(kafka, {a: 6, b: 9})
    mine = staff_auth(a, "site_staff", study=study)

    async def seen() -> dict[str, Any] | None:
        studies = (await app.get("/v1/portfolio", headers=mine)).json()["studies"]
        return studies[0] if studies and studies[0]["enrolled"] == 15 else None

    made = await eventually(seen, timeout=30)
    assert [s["site_id"] for s in made["sites"]] == [a]  # a site role sees its site

    stranger = staff_auth(None, "sponsor", study=unique_id("S"))
    assert (await app.get("/v1/portfolio", headers=stranger)).json()["studies"] == []
    page = await app.get("/portfolio", headers=stranger)
    assert page.status_code == 200
    assert study not in page.text
    drill = await app.get(f"/portfolio/{study}/sites/{a}", headers=stranger)
    assert drill.status_code == 404
    drill = await app.get(f"/portfolio/{study}/sites/{b}", headers=mine)
    assert drill.status_code == 404  # the other site of the study is not theirs
    r = await app.get(f"/v1/studies/{study}/forecast", headers=stranger)
    assert r.status_code == 404
    r = await app.get("/v1/portfolio", params={"study": study}, headers=stranger)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_study")
    r = await app.get("/v1/portfolio.csv", params={"study": study, "site": b}, headers=mine)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    r = await app.get("/v1/portfolio.csv", params={"site": a}, headers=mine)
    assert [row["site_id"] for row in csv.DictReader(io.StringIO(r.text))] == ["", a]

    signed_out = await app.get("/portfolio")
    assert signed_out.status_code == 401
    assert "Sign in" in signed_out.text


def _token(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


def _row(text: str, site: str) -> str:
    """The table row of a site on the page ('' if none)."""
    found = re.search(rf'<tr class="site" data-site="{re.escape(site)}">(.*?)</tr>', text, re.S)
    return html.unescape(found.group(1)) if found else ""


def _cookie(auth: dict[str, str]) -> dict[str, str]:
    """The session cookie the staff dashboard's login sets, holding the same token."""
    return {"Cookie": f"{SESSION_COOKIE}={_token(auth)}"}
