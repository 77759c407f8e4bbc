"""`python -m consent`: serve the consent API and follow enrolments."""

from trialstream.serve import serve

from consent.main import create_app
from consent.settings import ConsentSettings

if __name__ == "__main__":
    settings = ConsentSettings()
    serve(create_app(settings), settings, service="consent")
