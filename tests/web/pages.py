"""Reading the pages in tests."""

import re


def submission_of(body: str) -> str:
    """The hidden once-only token (``core.web.OnceForm``) of the first form on a page."""
    found = re.search(r'name="submission" value="([0-9a-f]{32})"', body)
    assert found, "the form carries no submission token"
    return found.group(1)
