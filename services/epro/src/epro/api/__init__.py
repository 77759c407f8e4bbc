"""ePRO's HTTP routes: the participant app's, the admin's and site staff's."""

from fastapi import APIRouter

from epro.api import admin, app, staff

router = APIRouter()
for part in (app, admin, staff):
    router.include_router(part.router)
