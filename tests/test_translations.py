"""The committed compiled catalogue (django.mo) says what the source catalogue (django.po) says.

Set-up compiles the .po only when it is newer than the .mo, and a fresh clone gives both the same
time, so a clone serves the committed .mo: one left stale by a merge would show people English or
an old sentence while the .po looks right."""

import gettext
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="msgfmt (gettext) is not installed")
def test_the_committed_mo_is_the_po_compiled(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(CATALOGUE / "django.po")], check=True)
    with open(fresh, "rb") as compiled, open(CATALOGUE / "django.mo", "rb") as committed:
        expected = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
        found = gettext.GNUTranslations(committed)._catalog  # type: ignore[attr-defined]
    stale = sorted(str(key) for key in expected.keys() | found.keys() if expected.get(key) != found.get(key))
    assert not stale, f"django.mo differs from django.po (run make messages after touching the .po): {stale[:5]}"
