"""Fixtures of the regulator's tests: the inspection cases' (tests/regulator/cases_helpers.py)."""

from tests.regulator.cases_helpers import jurisdictions, media_in_tmp  # noqa: F401 (fixtures)
