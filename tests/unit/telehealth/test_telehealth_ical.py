"""iCalendar output: RFC 5545 escaping, folding and CRLF."""

from __future__ import annotations

from datetime import UTC, datetime

from telehealth.domain.ical import CalendarEvent, escape, fold, render

START = datetime(2030, 1, 12, 8, tzinfo=UTC)
END = datetime(2030, 1, 12, 8, 30, tzinfo=UTC)


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_text_values_escape_separators_and_newlines() -> None:
    assert escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_long_lines_fold_at_75_octets_without_splitting_characters() -> None:
    line = "DESCRIPTION:" + "ü" * 100
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert folded.replace("\r\n ", "") == line


def test_calendar_has_one_event_per_booking_with_utc_times_and_crlf() -> None:
    events = [
        CalendarEvent(
            "b1@x", START, END, "Day 7 (video visit)", "Join: https://v/r/abc", "https://v/r/abc"
        ),
        CalendarEvent("b2@x", START, END, "Day 28, site", cancelled=True),
    ]
    text = render("Visits: nurse-a1", events, START)
    assert text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    lines = unfold(text)
    assert lines.count("BEGIN:VEVENT") == 2
    assert "DTSTART:20300112T080000Z" in lines
    assert "DTEND:20300112T083000Z" in lines
    assert "URL:https://v/r/abc" in lines
    assert "SUMMARY:Day 28\\, site" in lines
    assert lines.index("STATUS:CANCELLED") > lines.index("UID:b2@x")
    assert "X-WR-CALNAME:Visits: nurse-a1" in lines
