"""The consent service's routes: the participant app's (app.py) and staff's (staff.py)."""

from consent.api.app import router as app_router
from consent.api.staff import router as staff_router

__all__ = ["app_router", "staff_router"]
