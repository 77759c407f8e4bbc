from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from anomaly.cli import replay
from typer.testing import CliRunner


def write_readings(path: Path, values: list[float], bad_lines: dict[int, str]) -> None:
    t0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    lines = [
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "participant_id": "P-0001",
                "device_id": "wear-1",
                "metric": "heart-rate",
                "value": v,
                "unit": "beats/min",
                "measured_at": (t0 + timedelta(minutes=i)).isoformat(),
            }
        )
        for i, v in enumerate(values)
    ]
    for index, text in sorted(bad_lines.items()):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n")


def run(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command("replay")(replay)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["replay", *args])
    return result.exit_code, result.stdout, result.stderr


def test_replay_cli_writes_alerts_and_reports_bad_lines(tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_readings(source, [70, 71] + [140] * 8, {3: "{not json", 5: '{"metric": "heart-rate"}'})
    code, out, err = run("--input", str(source), "--output", str(sink))
    assert code == 0
    assert "10 readings, 2 rejected, 1 alerts" in out
    assert "line 4:" in err
    assert "line 6:" in err
    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(a["participant_id"], a["severity"]) for a in alerts] == [("P-0001", "high")]


def test_replay_strict_stops_at_first_bad_line(tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_readings(source, [70, 71], {1: '{"value": "x"}'})
    code, _, err = run("--input", str(source), "--output", str(sink), "--strict")
    assert code == 2
    assert "line 2:" in err


def test_replay_is_identical_to_live_scoring_of_the_same_readings(tmp_path: Path) -> None:
    source, out_a, out_b = tmp_path / "in.jsonl", tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_readings(source, [70] * 3 + [118] * 7 + [135] * 7 + [70] * 8 + [140] * 6, {})
    assert run("--input", str(source), "--output", str(out_a))[0] == 0
    assert run("--input", str(source), "--output", str(out_b))[0] == 0
    assert out_a.read_text() == out_b.read_text()
    assert len(out_a.read_text().splitlines()) == 3
