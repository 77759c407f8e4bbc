"""`python -m ingest`: serve the ingest API (uploads, enrolment, the readings archive)."""

from trialstream.serve import serve

from ingest.main import create_app
from ingest.settings import IngestSettings

if __name__ == "__main__":
    settings = IngestSettings()
    serve(create_app(settings), settings, service="ingest")
