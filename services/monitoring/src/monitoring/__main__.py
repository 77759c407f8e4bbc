"""`python -m monitoring`: serve the staff inbox API and consume alerts and enrolments."""

from trialstream.serve import serve

from monitoring.main import create_app
from monitoring.settings import MonitoringSettings

if __name__ == "__main__":
    settings = MonitoringSettings()
    serve(create_app(settings), settings, service="monitoring")
