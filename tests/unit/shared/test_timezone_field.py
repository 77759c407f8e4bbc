"""A participant's timezone is an IANA zone name, checked where it enters."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from trialstream.events.participants import ParticipantState


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_names_pass(zone: str) -> None:
    assert ParticipantState(participant_id="P-1", site_id="s", timezone=zone).timezone == zone


@pytest.mark.parametrize(
    "zone", ["Europe", "localtime", "posixrules", "../etc/passwd", "/etc/localtime", "", "x" * 65]
)
def test_a_region_a_path_or_the_host_zone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ParticipantState(participant_id="P-1", site_id="s", timezone=zone)
    assert caught.value.errors()[0]["loc"] == ("timezone",)


def test_a_bad_zone_on_the_topic_is_a_decode_error_so_it_is_dead_lettered() -> None:
    raw = b'{"participant_id": "P-1", "site_id": "s", "timezone": "Europe"}'
    with pytest.raises(ValidationError, match="IANA"):
        ParticipantState.model_validate_json(raw)
