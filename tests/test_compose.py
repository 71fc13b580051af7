"""docker-compose.yml, Dockerfile and .dockerignore checked against the code they deploy.

Docker does not run here, so the compose file is loaded with PyYAML, its ``${...}`` interpolation
is resolved by a small helper following Compose's rules, and what it says is compared with what
the code does: the settings it configures, the modules it starts, the URLs it probes.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
import pytest
import yaml
from django.conf import settings
from django.http.request import validate_host
from django.urls import resolve
from packaging.requirements import Requirement

from config import env as config_env

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements.txt"

APP_SERVICES = ("web", "worker", "beat")
REQUIRED_APP_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")

# --- Compose interpolation ------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    rf"\$(?:(?P<escaped>\$)"  # $$
    rf"|\{{(?P<braced>{_NAME})(?:(?P<op>:?[-?])(?P<arg>[^}}]*))?\}}"  # ${VAR}, ${VAR:-x}, ${VAR?x}, ...
    rf"|(?P<bare>{_NAME}))"  # $VAR
)


class MissingRequiredVariable(Exception):
    pass


def placeholder(name: str) -> str:
    return f"placeholder{name.lower().replace('_', '')}"


def interpolate(value: str, host_env: dict[str, str], *, strict: bool = False) -> str:
    """Resolve Compose's ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?message}`` and ``${VAR?message}`` against ``host_env``.

    A required variable missing from ``host_env`` becomes a placeholder, or raises when
    ``strict``. Any other use of ``$`` is an error, so unsupported syntax cannot pass unnoticed.
    """

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"]
        value = host_env.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if missing else value
        if op in (":?", "?"):
            if missing:
                if strict:
                    raise MissingRequiredVariable(f"{name}: {arg}")
                return placeholder(name)
            return value
        return value or ""

    assert "$" not in _TOKEN.sub("", value), f"unsupported interpolation in {value!r}"
    return _TOKEN.sub(substitute, value)


def interpolate_tree(node, host_env: dict[str, str], *, strict: bool = False):
    if isinstance(node, str):
        return interpolate(node, host_env, strict=strict)
    if isinstance(node, list):
        return [interpolate_tree(item, host_env, strict=strict) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(item, host_env, strict=strict) for key, item in node.items()}
    return node


def load_compose(host_env: dict[str, str] | None = None, *, strict: bool = False) -> dict:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return interpolate_tree(raw, host_env or {}, strict=strict)


@pytest.fixture
def compose() -> dict:
    return load_compose()


# --- Helpers --------------------------------------------------------------------------------


def command_tokens(command) -> list[str]:
    """A service's command as argv; ``sh -c SCRIPT`` is split into the script's words."""
    if isinstance(command, str):
        return shlex.split(command)
    if command[:2] == ["sh", "-c"]:
        return shlex.split(command[2])
    return list(command)


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list), "healthcheck.test should be a list (CMD or CMD-SHELL form)"
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def option_value(tokens: list[str], *names: str) -> str:
    for index, token in enumerate(tokens):
        if token in names:
            return tokens[index + 1]
        for name in names:
            if name.startswith("--") and token.startswith(name + "="):
                return token.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {tokens}")


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source for the service's short-syntax volumes."""
    mounts = {}
    for spec in service.get("volumes", []):
        source, target, *_ = spec.split(":")
        mounts[target] = source
    return mounts


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment should be a mapping"
    return env


def settings_read() -> dict[str, str]:
    # Touching a setting makes sure config/settings.py has run and filled config.env.READ.
    assert settings.ROOT_URLCONF
    return config_env.READ


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


# --- The interpolation helper itself ----------------------------------------------------------


def test_interpolation_helper_follows_compose_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("$${HOSTNAME}", env) == "${HOSTNAME}"
    assert interpolate("a${SET}b$SET", env) == "avaluebvalue"
    assert interpolate("${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${SET:-d}", env) == "d|d||value"
    assert interpolate("${UNSET:?needed}", env) == placeholder("UNSET")
    with pytest.raises(MissingRequiredVariable, match="UNSET"):
        interpolate("${UNSET:?needed}", env, strict=True)
    with pytest.raises(AssertionError, match="unsupported"):
        interpolate("${SET:+alt}", env)


# --- Services -------------------------------------------------------------------------------


def test_compose_defines_db_redis_web_worker_and_beat_each_with_a_healthcheck(compose):
    services = compose["services"]
    assert set(services) >= {"db", "redis", *APP_SERVICES}
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in ("db", "redis", *APP_SERVICES):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        assert healthcheck_text(services[name]).strip(), f"{name} healthcheck runs nothing"


def test_postgres_data_lives_in_a_named_volume(compose):
    source = volume_mounts(compose["services"]["db"]).get("/var/lib/postgresql/data")
    assert source, "nothing is mounted at postgres's data directory"
    assert not source.startswith(("/", ".")), f"{source} is a bind mount, not a named volume"
    assert source in compose["volumes"], f"volume {source} is not declared at the top level"


def test_db_healthcheck_runs_pg_isready_for_the_configured_user_and_database(compose):
    db = compose["services"]["db"]
    check = healthcheck_text(db)
    assert "pg_isready" in check
    # ``$${VAR}`` reaches the container as ``${VAR}``: it must name a variable the container has.
    for name in re.findall(rf"\$\{{({_NAME})\}}", check):
        assert name in environment(db), f"healthcheck uses {name}, which db does not set"
    assert "POSTGRES_USER" in check and "POSTGRES_DB" in check


def test_redis_healthcheck_pings_with_redis_cli(compose):
    assert command_tokens(compose["services"]["redis"]["healthcheck"]["test"][1:]) == ["redis-cli", "ping"]


def test_web_worker_and_beat_run_one_image_built_from_the_dockerfile(compose):
    services = compose["services"]
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1 and None not in images, f"app services run different images: {images}"
    assert services["web"].get("build") in (".", {"context": "."}), "web is not built from the repository"
    assert DOCKERFILE.is_file()


@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")  # whitenoise: no collectstatic run here
def test_web_migrates_then_serves_the_wsgi_application_with_gunicorn(compose):
    web = compose["services"]["web"]
    tokens = command_tokens(web["command"])
    assert "gunicorn" in tokens
    gunicorn = tokens.index("gunicorn")
    migrate = tokens.index("migrate")
    assert tokens[migrate - 2 : migrate] == ["python", "manage.py"]
    assert migrate < gunicorn, "gunicorn starts before the migrations"
    # The migrations must succeed for gunicorn to start.
    assert "&&" in tokens[migrate:gunicorn]

    args = tokens[gunicorn + 1 :]
    target = next(arg for arg in args if not arg.startswith("-"))
    module_path, _, attribute = target.partition(":")
    assert module_path == "config.wsgi"
    application = getattr(importlib.import_module(module_path), attribute)
    assert callable(application)
    assert f"{module_path}.{attribute}" == settings.WSGI_APPLICATION

    assert option_value(args, "--bind", "-b") == "0.0.0.0:8000"
    assert int(option_value(args, "--workers", "-w")) >= 1
    assert "8000:8000" in [str(port) for port in web["ports"]]


def test_web_healthcheck_probes_healthz_which_is_the_health_view(compose):
    import core.api

    check = compose["services"]["web"]["healthcheck"]["test"]
    urls = re.findall(r"https?://[^'\" ]+", " ".join(check))
    assert urls == ["http://127.0.0.1:8000/healthz"]
    url = urlparse(urls[0])
    assert resolve(url.path).func is core.api.healthz
    bind = option_value(command_tokens(compose["services"]["web"]["command"]), "--bind", "-b")
    assert url.port == int(bind.rsplit(":", 1)[1]), "the probe targets a port gunicorn does not listen on"


@pytest.mark.parametrize(
    ("status", "healthy"),
    [(200, True), (503, False)],
)
def test_web_healthcheck_exits_zero_only_on_200(compose, monkeypatch, status, healthy):
    import urllib.error
    import urllib.request

    check = compose["services"]["web"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"], "healthcheck should run python's urllib (the image has no curl)"
    requested = []

    class Response:
        def __init__(self, code):
            self.status = code

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        if status >= 400:
            raise urllib.error.HTTPError(url, status, "unhealthy", {}, None)
        return Response(status)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    try:
        exec(compile(check[3], "<healthcheck>", "exec"), {})
        exit_code = 0
    except SystemExit as exc:
        exit_code = 0 if exc.code in (None, 0, False) else 1
    except urllib.error.HTTPError:
        exit_code = 1  # an uncaught exception makes ``python -c`` exit 1
    assert requested == ["http://127.0.0.1:8000/healthz"]
    assert (exit_code == 0) is healthy


@pytest.mark.parametrize("host_env", [{}, {"DJANGO_ALLOWED_HOSTS": "escrow.example.com"}])
def test_web_healthcheck_host_is_allowed_whatever_hosts_the_operator_sets(host_env):
    compose = load_compose(host_env)
    raw = environment(compose["services"]["web"])["DJANGO_ALLOWED_HOSTS"]
    allowed = [host.strip() for host in raw.split(",") if host.strip()]  # as config.env.env_list splits
    assert validate_host("127.0.0.1", allowed), "Django would answer the probe with 400"
    for host in host_env.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        if host:
            assert validate_host(host, allowed)


def test_worker_and_beat_run_celery_on_the_config_app(compose):
    from celery.app.utils import find_app

    import config.celery

    for name, subcommand in (("worker", "worker"), ("beat", "beat")):
        tokens = command_tokens(compose["services"][name]["command"])
        assert tokens[0] == "celery"
        app_name = option_value(tokens, "-A", "--app")
        assert app_name == "config"
        assert subcommand in tokens[tokens.index(app_name) + 1 :]
        # Exactly how ``celery -A config`` finds the application.
        assert find_app(app_name) is config.celery.app


def test_worker_healthcheck_pings_the_worker_through_celery_inspect(compose):
    tokens = shlex.split(healthcheck_text(compose["services"]["worker"]))
    assert tokens[:3] == ["celery", "-A", "config"]
    assert tokens[3:5] == ["inspect", "ping"]
    # Celery's default node name is celery@<host name>, so the probe asks this container only.
    assert option_value(tokens, "-d", "--destination") == "celery@${HOSTNAME}"


def test_beat_keeps_its_schedule_on_a_volume_the_app_user_can_write(compose):
    beat = compose["services"]["beat"]
    schedule = Path(option_value(command_tokens(beat["command"]), "--schedule", "-s"))
    mounts = volume_mounts(beat)
    directory = str(schedule.parent)
    if directory != "/tmp":
        assert directory in mounts, f"{directory} is not a volume of beat"
        assert mounts[directory] in compose["volumes"], "the schedule volume is not a named volume"
        # A new named volume takes its owner from the image's directory: the app user must own it.
        runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
        assert re.search(rf"chown\s+\S*app\S*\s+{re.escape(directory)}\b", runs)
    # The beat healthcheck watches that same file.
    assert str(schedule) in healthcheck_text(beat)


# --- Environment ----------------------------------------------------------------------------


def test_every_variable_compose_sets_for_the_app_is_read_by_settings(compose):
    read = settings_read()
    for name in APP_SERVICES:
        unread = set(environment(compose["services"][name])) - set(read)
        assert not unread, f"{name} sets {sorted(unread)}, which config/settings.py never reads"


def test_required_variables_are_set_for_web_worker_and_beat(compose):
    read = settings_read()
    for name in APP_SERVICES:
        env = environment(compose["services"][name])
        for variable in REQUIRED_APP_VARIABLES:
            assert variable in read
            assert env.get(variable), f"{name} does not set {variable}"


def test_compose_refuses_to_start_without_a_secret_key():
    with pytest.raises(MissingRequiredVariable, match="DJANGO_SECRET_KEY"):
        load_compose({}, strict=True)
    compose = load_compose({"DJANGO_SECRET_KEY": "k" * 50}, strict=True)
    for name in APP_SERVICES:
        assert environment(compose["services"][name])["DJANGO_SECRET_KEY"] == "k" * 50


def test_app_services_run_with_debug_off(compose, monkeypatch):
    for name in APP_SERVICES:
        value = environment(compose["services"][name])["DJANGO_DEBUG"]
        assert isinstance(value, str), "compose needs the value quoted"
        monkeypatch.setenv("DJANGO_DEBUG", value)
        assert config_env.env_bool("DJANGO_DEBUG", True) is False


@pytest.mark.parametrize("host_env", [{}, {"POSTGRES_PASSWORD": "s3cret-Pa55word"}])
def test_database_url_names_the_db_service_and_its_credentials(host_env):
    compose = load_compose(host_env)
    db_env = environment(compose["services"]["db"])
    for name in APP_SERVICES:
        url = environment(compose["services"][name])["DATABASE_URL"]
        parsed = dj_database_url.parse(url)
        assert parsed["ENGINE"] == "django.db.backends.postgresql"
        assert parsed["HOST"] == "db"
        assert parsed["PORT"] in (None, "", 5432)
        assert parsed["USER"] == db_env["POSTGRES_USER"]
        assert parsed["PASSWORD"] == db_env["POSTGRES_PASSWORD"]
        assert parsed["NAME"] == db_env["POSTGRES_DB"]
    if "POSTGRES_PASSWORD" in host_env:
        assert db_env["POSTGRES_PASSWORD"] == host_env["POSTGRES_PASSWORD"]


def test_broker_url_names_the_redis_service(compose):
    assert "redis" in compose["services"]
    for name in APP_SERVICES:
        url = urlparse(environment(compose["services"][name])["CELERY_BROKER_URL"])
        assert url.scheme == "redis"
        assert url.hostname == "redis"
        assert (url.port or 6379) == 6379


def test_web_worker_and_beat_wait_for_healthy_db_and_redis(compose):
    for name in APP_SERVICES:
        depends_on = compose["services"][name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name} must use the long depends_on form with conditions"
        for dependency in ("db", "redis"):
            assert depends_on.get(dependency, {}).get("condition") == "service_healthy", (
                f"{name} does not wait for {dependency} to be healthy"
            )


# --- Image ----------------------------------------------------------------------------------


def test_dockerfile_installs_requirements_and_runs_as_a_non_root_user():
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")

    copy_requirements = next(i for i, (k, a) in enumerate(instructions) if k == "COPY" and "requirements.txt" in a)
    install = next(
        i for i, (k, a) in enumerate(instructions) if k == "RUN" and re.search(r"pip install .*-r requirements\.txt", a)
    )
    assert copy_requirements < install

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
    assert ("EXPOSE", "8000") in instructions
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN"), "RUN steps after USER"


def test_dockerfile_collects_static_with_a_secret_key_for_that_step_only():
    instructions = dockerfile_instructions()
    collect = [args for keyword, args in instructions if keyword == "RUN" and "collectstatic" in args]
    assert len(collect) == 1
    assert re.search(r"DJANGO_SECRET_KEY=\S+ python manage\.py collectstatic --noinput", collect[0])
    persistent = [(k, a) for k, a in instructions if k in ("ENV", "ARG") and "DJANGO_SECRET_KEY" in a]
    assert not persistent, "the build key would stay in the image"


def test_requirements_pin_gunicorn_celery_and_the_postgres_and_redis_clients():
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            pins[requirement.name.lower()] = requirement
    for name in ("gunicorn", "celery", "psycopg2-binary", "redis", "dj-database-url"):
        assert name in pins, f"{name} is not in requirements.txt"
        operators = {spec.operator for spec in pins[name].specifier}
        assert operators == {"=="}, f"{name} is not pinned: {pins[name]}"


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for required in (".venv", "var", ".git", "staticfiles", "bench/out"):
        assert required in patterns, f"{required} is sent to the Docker build"
    assert patterns & {"__pycache__", "**/__pycache__"}


def test_every_setting_read_from_the_environment_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in settings_read() if f"`{name}`" not in readme)
    assert not undocumented, f"README.md does not document {undocumented}"
