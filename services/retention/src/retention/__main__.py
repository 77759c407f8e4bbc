"""`python -m retention`: serve the retention API, consume triggers, dispatch nudges."""

from trialstream.serve import serve

from retention.main import create_app
from retention.settings import RetentionSettings

if __name__ == "__main__":
    settings = RetentionSettings()
    serve(create_app(settings), settings, service="retention")
