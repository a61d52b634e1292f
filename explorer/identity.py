"""The app's name and version, for the CLI, the window and the About box.

Its own module, importing nothing of the app, so `app`, `about` and `main_window` all read it
without importing one another in a circle.
"""

from __future__ import annotations

from importlib import metadata

APP_NAME = "rlhf-explorer"
APP_DISPLAY_NAME = "RLHF Explorer"
ORGANIZATION = "rlhf-explorer"


def app_version() -> str:
    """The installed package version, or "dev" when running from an uninstalled tree."""
    try:
        return metadata.version(APP_NAME)
    except metadata.PackageNotFoundError:
        return "dev"
