"""A simulated fleet of wearables for demos and load: enrols participants, devices and
site staff through the admin APIs, then uploads readings over HTTP like a phone app.

Time runs fast while catching up from `backfill_minutes` ago (so scripted episodes and
their alerts show up within a minute), then in real time. Each participant follows a
scenario; only some scenarios should raise alerts, which makes the demo a sanity check:
  normal           resting heart rate, light walking
  exercise         bouts of 120-150 beats/min while walking briskly (no alert expected)
  tachycardia      125-140 beats/min at rest for 25 min (alert expected)
  desaturation     SpO2 88-91 % for 40 min (alert expected)
  fever            38.6-39.4 C for 60 min (alert expected)
  artefacts        single-sample spikes of 185 beats/min (no alert expected)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from trialstream.identity import DEFAULT_STUDY
from trialstream.studies import StudyDefinition

log = logging.getLogger("trialstream.simulate")

SCENARIOS = ("normal", "exercise", "tachycardia", "desaturation", "fever", "artefacts")


@dataclass(frozen=True)
class FleetConfig:
    participants: int
    sites: int
    speed: float
    backfill_minutes: int
    duration_seconds: float
    ingest_url: str
    monitoring_url: str
    identity_url: str
    admin_token: str
    credentials_out: Path | None = None
    seed: int = 7
    # Declared studies to spread the fleet over (their sites); none: the default study at
    # `sites` made-up sites.
    studies: tuple[StudyDefinition, ...] = ()


@dataclass
class SimParticipant:
    participant_id: str
    site_id: str
    device_id: str
    scenario: str
    resting_hr: float
    study_id: str = DEFAULT_STUDY
    token: str = ""
    rng: random.Random = field(default_factory=random.Random)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def minute(self, at: datetime, offset_min: int) -> list[dict[str, Any]]:
        """Readings for one simulated minute `offset_min` minutes after the start."""
        r = self.rng
        steps = r.choice([0, 0, 0, 0, 5, 12, 30]) if 6 <= at.hour < 23 else 0
        hr = self.resting_hr + r.gauss(0, 2.5)
        spo2, temp, rr = 97.0 + r.gauss(0, 0.8), 36.7 + r.gauss(0, 0.2), 15.0 + r.gauss(0, 1.2)
        cycle = offset_min % 180  # scenarios repeat every 3 simulated hours
        if self.scenario == "exercise" and 5 <= cycle < 30:
            steps, hr, rr = r.randint(110, 135), 120 + r.gauss(10, 6), 22 + r.gauss(0, 1.5)
        elif self.scenario == "tachycardia" and 10 <= cycle < 35:
            steps, hr = 0, 125 + r.uniform(0, 15)
        elif self.scenario == "desaturation" and 10 <= cycle < 50:
            spo2 = r.uniform(88, 91)
        elif self.scenario == "fever" and 10 <= cycle < 70:
            temp, hr = r.uniform(38.6, 39.4), hr + 8
        elif self.scenario == "artefacts" and cycle % 17 == 0:
            hr = 185.0
        out = [
            self._reading("heart-rate", round(min(max(hr, 30), 220), 1), "beats/min", at),
            self._reading("step-count", float(steps), "steps", at),
        ]
        if offset_min % 5 == 0:
            out += [
                self._reading("oxygen-saturation", round(min(spo2, 100.0), 1), "%", at),
                self._reading("body-temperature", round(temp, 2), "C", at),
                self._reading("respiratory-rate", round(max(rr, 6), 1), "breaths/min", at),
            ]
        return out

    def _reading(self, metric: str, value: float, unit: str, at: datetime) -> dict[str, Any]:
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "participant_id": self.participant_id,
            "device_id": self.device_id,
            "metric": metric,
            "value": value,
            "unit": unit,
            "measured_at": at.isoformat(),
        }


def places(config: FleetConfig) -> list[tuple[str, str]]:
    """(study, site) pairs the fleet is spread over, round robin."""
    if config.studies:
        return [(s.study_id, site.id) for s in config.studies for site in s.sites]
    return [(DEFAULT_STUDY, f"site-{chr(ord('a') + i)}") for i in range(config.sites)]


def build_fleet(config: FleetConfig, run_id: str) -> list[SimParticipant]:
    rng = random.Random(config.seed)
    where = places(config)
    fleet = []
    for i in range(config.participants):
        pid = f"P-{i + 1:04d}"
        study, site = where[i % len(where)]
        fleet.append(
            SimParticipant(
                participant_id=pid,
                study_id=study,
                site_id=site,
                device_id=f"wear-{pid}-{run_id}",
                scenario=SCENARIOS[i % len(SCENARIOS)],
                resting_hr=rng.uniform(55, 78),
                rng=random.Random(rng.getrandbits(64)),
            )
        )
    return fleet


async def enrol(
    client: httpx.AsyncClient, config: FleetConfig, fleet: list[SimParticipant], run_id: str
) -> list[dict[str, str]]:
    # The admin token only bootstraps the identity service: the simulator enrols as a
    # person of its own (a platform admin), so the audit names it.
    _, token = await person(client, config, f"simulator-{run_id}", [{"role": "platform_admin"}])
    admin = {"Authorization": f"Bearer {token}"}
    for p in fleet:
        body = {"participant_id": p.participant_id, "study_id": p.study_id, "site_id": p.site_id}
        for _ in range(60):  # ingest learns a study just applied within a second or two
            r = await client.post(
                f"{config.ingest_url}/v1/admin/participants", headers=admin, json=body
            )
            if r.status_code not in (422, 503) or r.json()["error"]["code"] not in (
                "unknown_study",
                "studies_loading",
            ):
                break
            await asyncio.sleep(0.5)
        if r.status_code not in (201, 409):
            r.raise_for_status()
        r = await client.post(
            f"{config.ingest_url}/v1/admin/devices",
            headers=admin,
            json={"device_id": p.device_id, "participant_id": p.participant_id},
        )
        r.raise_for_status()
        p.token = r.json()["token"]
    return await create_staff(client, config, places(config), run_id)


# Who the demo signs in as: per site a nurse and an investigator, and per study one
# monitor (CRA) for every site of it.
STAFF_ROLES = {"site_staff": "nurse", "investigator": "investigator"}  # role: name prefix


async def create_staff(
    client: httpx.AsyncClient, config: FleetConfig, where: list[tuple[str, str]], run_id: str
) -> list[dict[str, str]]:
    """People at the identity issuer (bootstrap admin token), each with a fresh password,
    signed in once so the banner can show an access token."""
    wanted: list[tuple[str, str, str, str | None]] = [
        (f"{STAFF_ROLES[role]}-{site}-{run_id}", role, study, site)
        for study, site in where
        for role in STAFF_ROLES
    ]
    for study in sorted({study for study, _ in where}):
        wanted.append((f"monitor-{study.lower()}-{run_id}", "monitor", study, None))
    staff = []
    for subject, role, study, site in wanted:
        grant = {"role": role, "study": study, **({"site": site} if site else {})}
        password, token = await person(client, config, subject, [grant])
        staff.append(
            {
                "staff_id": subject,
                "role": role,
                "study_id": study,
                "site_id": site or "(all)",
                "password": password,
                "token": token,
            }
        )
    return staff


async def person(
    client: httpx.AsyncClient, config: FleetConfig, subject: str, grants: list[dict[str, str]]
) -> tuple[str, str]:
    """A person created at the identity issuer with the bootstrap admin token and a fresh
    password, signed in once: (password, access token)."""
    password = secrets.token_urlsafe(12)
    body = {"subject": subject, "name": subject, "password": password, "grants": grants}
    r = await client.post(
        f"{config.identity_url}/v1/people",
        headers={"Authorization": f"Bearer {config.admin_token}"},
        json=body,
    )
    r.raise_for_status()
    r = await client.post(
        f"{config.identity_url}/v1/token",
        json={"grant_type": "password", "username": subject, "password": password},
    )
    r.raise_for_status()
    return password, str(r.json()["access_token"])


async def upload(client: httpx.AsyncClient, url: str, p: SimParticipant) -> None:
    """Send what is pending; on failure keep it for the next tick (event ids make retries safe)."""
    if not p.pending:
        return
    batch, p.pending = p.pending[:5000], p.pending[5000:]
    try:
        r = await client.post(
            f"{url}/v1/readings",
            json={"readings": batch},
            headers={"Authorization": f"Bearer {p.token}"},
        )
        r.raise_for_status()
        body = r.json()
        if body["rejected"]:
            log.warning(
                "%s: %d readings rejected: %s",
                p.participant_id,
                body["rejected"],
                next(x for x in body["results"] if x["status"] == "rejected"),
            )
    except httpx.HTTPError as exc:
        log.warning("%s: upload failed (%s), will retry", p.participant_id, exc)
        p.pending = batch + p.pending


async def run_fleet(config: FleetConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_id = uuid.uuid4().hex[:6]
    fleet = build_fleet(config, run_id)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        staff = await enrol(client, config, fleet, run_id)
        if config.credentials_out is not None:
            config.credentials_out.write_text(
                json.dumps(
                    {
                        "staff": staff,
                        "monitoring_url": config.monitoring_url,
                        "identity_url": config.identity_url,
                        "ingest_url": config.ingest_url,
                    },
                    indent=2,
                )
            )
        log.info("enrolled %d participants at %d sites; streaming", len(fleet), config.sites)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sim_start = (datetime.now(UTC) - timedelta(minutes=config.backfill_minutes)).replace(
            second=0, microsecond=0
        )
        next_minute = 0
        while not config.duration_seconds or loop.time() - started < config.duration_seconds:
            elapsed_min = (loop.time() - started) * config.speed / 60.0
            now_min = int((datetime.now(UTC) - sim_start).total_seconds() // 60)
            target = min(int(elapsed_min), now_min)
            while next_minute <= target:
                at = sim_start + timedelta(minutes=next_minute)
                for p in fleet:
                    p.pending.extend(p.minute(at, next_minute))
                next_minute += 1
            await asyncio.gather(*(upload(client, config.ingest_url, p) for p in fleet))
            await asyncio.sleep(1.0)
