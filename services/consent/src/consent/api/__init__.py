"""The consent service's routes: the participant app's (app.py), staff's (staff.py), erasure
(erasure.py)."""

from consent.api.app import router as app_router
from consent.api.erasure import router as erasure_router
from consent.api.staff import router as staff_router

__all__ = ["app_router", "erasure_router", "staff_router"]
