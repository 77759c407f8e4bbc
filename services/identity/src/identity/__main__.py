"""`python -m identity`: serve the embedded issuer (sign-in, discovery, keys, people)."""

from trialstream.serve import serve

from identity.main import create_app
from identity.settings import IdentitySettings

if __name__ == "__main__":
    settings = IdentitySettings()
    serve(create_app(settings), settings, service="identity")
