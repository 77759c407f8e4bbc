"""Monitoring's HTTP routes: the alert inbox and timelines (alerts), risk-based monitoring
(rbm: KRIs and flags), a study's aggregates (summary: what a sponsor sees), and the
server-rendered dashboard (pages, with its static files)."""

from fastapi import APIRouter

from monitoring.api import alerts, pages, rbm, summary

router = APIRouter()
for part in (alerts, rbm, summary, pages):
    router.include_router(part.router)
