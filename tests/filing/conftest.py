import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded documents go to a fresh directory, not var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
