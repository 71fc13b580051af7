"""Production settings: `manage.py check --deploy` passes without a warning, HTTPS is enforced by
default with debug off (and off for `make run`'s DJANGO_DEBUG=1), the health checks stay reachable
over plain HTTP, and secrets come only from the environment."""

import ast
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"

# Shaped like real credentials: Stripe secret, restricted and live publishable keys, webhook secrets.
CREDENTIAL = re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{8,}|\bpk_live_[0-9A-Za-z]{8,}|\bwhsec_[0-9A-Za-z]{8,}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE", re.IGNORECASE)
# Django's marker for a key that must never reach production: `check --deploy` refuses it (W009).
INSECURE_PREFIX = "django-insecure-"


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``manage.py`` in a fresh process whose environment holds only the settings given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_", "AXES_"))}
    clean.update({"VAR_DIR": str(tmp_path / "var"), "PAYMENT_GATEWAY": "local", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def production_env() -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "escrow.example.com",
    }


SHOW_SETTINGS = """
import json
from django.conf import settings
names = ["DEBUG", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]
print(json.dumps({name: getattr(settings, name, None) for name in names}))
"""


def test_production_settings_pass_the_deploy_check_without_a_warning(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(), tmp_path=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output.upper(), output


def test_settings_refuse_to_start_with_debug_off_and_no_secret_key(tmp_path):
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = manage("check", env=env, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_make_run_debug_mode_serves_plain_http(tmp_path):
    # `make run` exports DJANGO_DEBUG=1 and serves http://127.0.0.1:8000: nothing may force HTTPS.
    result = manage("shell", "-c", SHOW_SETTINGS, env={"DJANGO_DEBUG": "1"}, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown == {
        "DEBUG": True,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }


@pytest.mark.django_db
def test_with_the_https_redirect_on_pages_move_to_https_but_health_checks_answer_over_http(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()  # built after the override: the security middleware reads it when loaded

    redirected = client.get("/login/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/login/"
    assert client.get("/login/", headers={"x-forwarded-proto": "https"}).status_code == 200  # behind the proxy
    # The container's health probe calls http://127.0.0.1:8000/healthz directly.
    assert client.get("/livez").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)  # answered, not redirected


def _string_assignments(tree: ast.AST):
    """(name, value) of every ``NAME = "literal"`` (chains included) in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.value.value


def _env_defaults(tree: ast.AST):
    """(variable, default) of every ``env_str("VARIABLE", "default", ...)`` call."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "env_str"
            and len(node.args) >= 2
            and all(isinstance(arg, ast.Constant) for arg in node.args[:2])
        ):
            yield node.args[0].value, node.args[1].value


def test_no_secret_sits_in_config_every_one_comes_from_the_environment():
    sources = sorted(CONFIG.rglob("*.py"))
    assert CONFIG / "settings.py" in sources
    found = []
    for path in sources:
        text = path.read_text()
        found += [f"{path.name}: credential-shaped {match!r}" for match in CREDENTIAL.findall(text)]
        tree = ast.parse(text)
        for name, value in _string_assignments(tree):
            if SECRET_NAME.search(name) and value and not value.startswith(INSECURE_PREFIX):
                found.append(f"{path.name}: {name} is a literal")
        for variable, default in _env_defaults(tree):
            if SECRET_NAME.search(variable) and default:
                found.append(f"{path.name}: {variable} has a default")
    assert not found, found


def test_the_scan_would_see_a_secret():
    leaked = 'SECRET_KEY = "abc"\nSTRIPE_API_KEY = env_str("STRIPE_API_KEY", "sk_live_abcdefgh1234")\n'
    tree = ast.parse(leaked)
    assert ("SECRET_KEY", "abc") in list(_string_assignments(tree))
    assert ("STRIPE_API_KEY", "sk_live_abcdefgh1234") in list(_env_defaults(tree))
    assert CREDENTIAL.findall(leaked) == ["sk_live_abcdefgh1234"]


def write_local_env(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "local.env").write_text(
        f"DJANGO_DEBUG=1\nDJANGO_SECRET_KEY={INSECURE_PREFIX}{secrets.token_urlsafe(20)}\nSTRIPE_API_KEY=ignored\n"
    )


def test_a_checkouts_local_env_lets_manage_py_run_as_readme_shows_it(tmp_path):
    # After `make run` a newcomer types `.venv/bin/python manage.py verify_ledger` in a plain shell.
    assert "DJANGO_SECRET_KEY is required" in manage("check", env={}, tmp_path=tmp_path).stderr
    write_local_env(tmp_path)
    result = manage("shell", "-c", SHOW_SETTINGS, env={}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["DEBUG"] is True


def test_the_environment_wins_over_a_local_env_file(tmp_path):
    write_local_env(tmp_path)
    result = manage("check", env={"DJANGO_DEBUG": "0"}, tmp_path=tmp_path)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is required" in result.stderr
    shown = manage("shell", "-c", SHOW_SETTINGS, env=production_env(), tmp_path=tmp_path)
    assert json.loads(shown.stdout.strip().splitlines()[-1])["DEBUG"] is False
