"""Language tags are checked against the IANA subtag registry where they enter (BCP 47)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from trialstream.events.base import LanguageTag


class Preferences(BaseModel):
    language: LanguageTag


@pytest.mark.parametrize("tag", ["en", "de-CH", "pt-BR", "zh-Hant-TW", "es-419", "fil"])
def test_registered_tags_are_kept_as_sent(tag: str) -> None:
    assert Preferences(language=tag).language == tag


@pytest.mark.parametrize("tag", ["xx-YY", "zz", "english", "en_US", "e", "en--GB", "x" * 40])
def test_tags_outside_the_registry_are_refused_naming_the_field(tag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Preferences(language=tag)
    (error,) = caught.value.errors()
    assert error["loc"] == ("language",)
    assert error["type"] in ("language_not_registered", "string_too_short", "string_too_long")
