"""`python -m anomaly`: run the scoring consumer (with health and metrics routes)."""

from trialstream.serve import serve

from anomaly.main import create_app
from anomaly.settings import AnomalySettings

if __name__ == "__main__":
    settings = AnomalySettings()
    serve(create_app(settings), settings, service="anomaly")
