"""`python -m telehealth`: serve the scheduling API, consume alerts and enrolments."""

from trialstream.serve import serve

from telehealth.main import create_app
from telehealth.settings import TelehealthSettings

if __name__ == "__main__":
    settings = TelehealthSettings()
    serve(create_app(settings), settings, service="telehealth")
