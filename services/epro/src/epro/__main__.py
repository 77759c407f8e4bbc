"""`python -m epro`: serve the ePRO API, run the scheduler, consume enrolments and visits."""

from trialstream.serve import serve

from epro.main import create_app
from epro.settings import EproSettings

if __name__ == "__main__":
    settings = EproSettings()
    serve(create_app(settings), settings, service="epro")
