"""`python -m intelligence`: serve pre-screening, referrals and forecasts; follow enrolments."""

from trialstream.serve import serve

from intelligence.main import create_app
from intelligence.settings import IntelligenceSettings

if __name__ == "__main__":
    settings = IntelligenceSettings()
    serve(create_app(settings), settings, service="intelligence")
