"""`trialstream replay`: JSONL in, alerts out, bad lines reported, same alerts as live."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from pathlib import Path

import typer
from anomaly.cli import replay
from anomaly.domain import Scorer
from anomaly.replay import CHUNK, parse_line, replay_file
from anomaly_streams import T0, write_fleet
from typer.testing import CliRunner


def record(minute: int, value: float, **overrides: object) -> str:
    base = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"replay/{minute}")),
        "participant_id": "P-0001",
        "device_id": "wear-1",
        "metric": "heart-rate",
        "value": value,
        "unit": "beats/min",
        "measured_at": (T0 + timedelta(minutes=minute)).isoformat(),
    }
    return json.dumps(base | overrides)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*args: str) -> tuple[int, str, str]:
    """The command as the trialstream CLI mounts it: a function passed to Typer.command."""
    app = typer.Typer()
    app.command("replay")(replay)
    app.command("version")(lambda: None)  # a second command, so `replay` must be named
    result = CliRunner().invoke(app, ["replay", *args])
    return result.exit_code, result.stdout, result.stderr


def test_replay_cli_writes_alerts_and_reports_bad_lines(tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [record(i, v) for i, v in enumerate([70, 71] + [140] * 8)]
    lines[3:3] = ["{not json"]
    lines[5:5] = [record(99, 72, unit="bpm")]
    lines[7:7] = [""]  # blank lines are skipped silently
    write_lines(source, lines)
    code, out, err = run("--input", str(source), "--output", str(sink))
    assert code == 0, err
    assert out.startswith("10 readings, 2 rejected, 1 alerts in ")
    assert out.rstrip().endswith(" readings/s)")
    assert "line 4: (line): not JSON: " in err
    assert "line 6: unit: heart-rate must be in 'beats/min', got 'bpm'" in err
    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(a["participant_id"], a["severity"], a["rule"]) for a in alerts] == [
        ("P-0001", "high", "clinical-limit/heart-rate-high")
    ]


def test_replay_scores_with_the_device_mix_profile_unless_told_otherwise(tmp_path: Path) -> None:
    """115 beats/min at rest for 12 min: over the classic profile's NEWS2 limit (111),
    under the trial definition (120) the default device-mix profile alerts on."""
    source = tmp_path / "in.jsonl"
    write_lines(source, [record(i, v) for i, v in enumerate([70, 71] + [115] * 12)])

    def versions(*options: str) -> list[tuple[str, float]]:
        sink = tmp_path / "out.jsonl"
        code, _, err = run("--input", str(source), "--output", str(sink), *options)
        assert code == 0, err
        alerts = [json.loads(line) for line in sink.read_text().splitlines()]
        return [(a["model_version"], a["threshold"]) for a in alerts]

    assert versions() == []
    assert versions("--profile", "device-mix") == []
    assert versions("--profile", "classic") == [("classic/rules-2.0", 111)]
    tachycardia = [record(i, v) for i, v in enumerate([70, 71] + [125] * 8)]
    write_lines(source, tachycardia)
    assert versions() == versions("--device-mix") == [("device-mix/rules-3.4", 120)]
    code, _, err = run("--input", str(source), "--output", str(tmp_path / "o"), "--profile", "x")
    assert code == 2
    assert "device-mix" in err


def test_replay_reports_each_invalid_field(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_lines(source, [record(0, 70, metric="pulse", participant_id="jane@example.com")])
    code, out, err = run("--input", str(source), "--output", str(tmp_path / "out.jsonl"))
    assert code == 0
    assert "0 readings, 1 rejected" in out
    assert "line 1: participant_id: " in err
    assert "line 1: metric: " in err


def test_replay_strict_stops_at_first_bad_line_and_writes_nothing(tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [record(i, 140) for i in range(8)] + [record(9, 400)])
    code, _, err = run("--input", str(source), "--output", str(sink), "--strict")
    assert code == 1
    assert "line 9: value: heart-rate of 400.0 beats/min is outside" in err
    assert not sink.exists()
    assert list(tmp_path.iterdir()) == [source]  # no partial file left behind


def test_replay_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o"))
    assert code == 2
    assert "does not exist" in err


def test_replay_writes_what_live_scoring_emits(tmp_path: Path) -> None:
    """Same Scorer, same chunking as the consumer's batches: byte-identical alerts."""
    source, sink = tmp_path / "fleet.jsonl", tmp_path / "alerts.jsonl"
    lines = write_fleet(source, participants=24, minutes=400)
    assert lines > CHUNK
    stats = replay_file(source, sink, strict=True)
    readings = [parse_line(line) for line in source.read_text().splitlines()]
    scorer = Scorer()
    live = [
        a for i in range(0, len(readings), CHUNK) for a in scorer.score(readings[i : i + CHUNK])
    ]
    assert sink.read_text().splitlines() == [a.model_dump_json() for a in live]
    assert (stats.readings, stats.rejected, stats.alerts) == (lines, 0, len(live))
    assert {a.rule.split("/")[1] for a in live} >= {"heart-rate-high", "oxygen-saturation-low"}


def test_replay_converts_fahrenheit_like_ingest(tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    fever_f = [
        record(i * 5, 102.2, metric="body-temperature", unit="F", event_id=str(uuid.uuid4()))
        for i in range(4)
    ]
    write_lines(source, fever_f)
    stats = replay_file(source, sink)
    (alert,) = [json.loads(line) for line in sink.read_text().splitlines()]
    assert stats.rejected == 0
    assert alert["observed"] == [39.0] * 2  # two readings in a row, 5 min apart
    assert alert["severity"] == "low"


def test_parsing_in_worker_processes_changes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_fleet(source, participants=6, minutes=3 * CHUNK // 18)
    with source.open("a") as f:  # a bad line in the middle of the later chunks
        f.write("{not json}\n")
    write_fleet(tmp_path / "more.jsonl", participants=6, minutes=60, seed=3)
    with source.open("a") as f:
        f.write((tmp_path / "more.jsonl").read_text())
    outputs = []
    for workers in (0, 1, 2):
        sink, errors = tmp_path / f"out{workers}.jsonl", io.StringIO()
        stats = replay_file(source, sink, workers=workers, errors=errors)
        outputs.append(
            (sink.read_text(), errors.getvalue(), stats.readings, stats.rejected, stats.alerts)
        )
    assert outputs[0] == outputs[1] == outputs[2]
    lines = source.read_text().split("\n")
    assert outputs[0][1].startswith(f"line {lines.index('{not json}') + 1}: ")
    assert outputs[0][3] == 1
    assert outputs[0][4] > 0
