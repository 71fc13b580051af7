"""Settings, all read from the environment (see README "Configuration").

The embedded default needs no server: SQLite in ``var/`` and Celery on kombu's filesystem transport.
Set ``DATABASE_URL`` and ``CELERY_BROKER_URL`` to run on PostgreSQL and Redis.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import database_config, env_bool, env_int, env_list, env_str
from core.logging import logging_config
from core.queues import bulk_queue
from core.rules import profile_defaults

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(
    env_str("VAR_DIR", str(BASE_DIR / "var"), doc="Folder for the embedded database, broker and beat state.")
)

if not VAR_DIR.exists():
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False, doc="Django debug mode; never on in production.")
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "", doc="Signing key; required unless DJANGO_DEBUG=1.")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    # Local runs only. Django's "django-insecure-" prefix makes `check --deploy` refuse this key.
    SECRET_KEY = "django-insecure-local-development-key-not-for-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost", doc="Comma-separated host names served.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "", doc="Comma-separated origins allowed to POST forms.")

# --- HTTPS (README "Security") ----------------------------------------------------------------
# Production defaults are the safe ones; DJANGO_DEBUG=1 (`make run`, plain http://127.0.0.1)
# turns them off. TLS ends at a reverse proxy that sets X-Forwarded-Proto: https.
SECURE_SSL_REDIRECT = env_bool(
    "DJANGO_SECURE_SSL_REDIRECT", not DEBUG, doc="Redirect plain-HTTP requests to HTTPS (health checks exempt)."
)
# The container's own health probe calls http://127.0.0.1:8000/healthz, behind no proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^metrics$"]  # Prometheus scrapes from inside too
if env_bool(
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    not DEBUG,
    doc="Trust the proxy's X-Forwarded-Proto header to tell HTTPS requests (only behind a proxy that sets it).",
):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, doc="Strict-Transport-Security max-age (0: none)."
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG, doc="HSTS covers every subdomain too."
)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG, doc="HSTS header asks for browser preloading.")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool(
    "DJANGO_SECURE_COOKIES", not DEBUG, doc="Send the session and CSRF cookies over HTTPS only."
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "notifications",
    "escrow",
    "payments",
    "merchants",
    "consumers",
    "refunds",
    "complaints",
    "regulator",
    "demo",
]

MIDDLEWARE = [
    # Each request's id (X-Request-ID, in every log line) first; then request rates and latencies,
    # timed from here (README "Operations").
    "core.middleware.RequestIdMiddleware",
    "core.middleware.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.ApiNotFoundMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session passed the second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A regulator's session without its second factor, or idle too long, ends here (after the
    # messages, so the idle one can say why on the login page).
    "core.middleware.RegulatorSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.replica.ReplicaReadsMiddleware",
    # Last, as django-axes asks: it turns a login refused by the lockout into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "web-login"
LOGIN_REDIRECT_URL = "web-home"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.bell",
            ],
        },
    },
]

# --- Login throttling (django-axes) ---------------------------------------------------------------
# Every password check (the /login/ page, POST /api/v1/auth/token, the admin) goes through
# authenticate(request, ...): the axes backend refuses it once a username has failed
# AXES_FAILURE_LIMIT times from one IP address, until AXES_COOLOFF_MINUTES after the last failure.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, doc="Failed logins of one username from one IP before lockout.")
AXES_COOLOFF_MINUTES = env_int(
    "AXES_COOLOFF_MINUTES", 15, doc="Minutes a locked-out login stays refused after its last attempt."
)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login forgets that user's earlier failures from that address
AXES_LOCKOUT_CALLABLE = "core.web.login_lockout_response"
# Behind reverse proxies the connection's address is the nearest proxy's: the throttle then reads
# the client's from X-Forwarded-For, as far as the trusted proxies wrote it (core.web.client_ip).
TRUSTED_PROXY_COUNT = env_int(
    "TRUSTED_PROXY_COUNT",
    0,
    doc="Reverse proxies in front of web that each append the address they were reached from to X-Forwarded-For.",
)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
AXES_CLIENT_IP_CALLABLE = "core.web.client_ip"

# --- Regulators' two factors (README "Security") ----------------------------------------------
# A regulator signs in with the password and the current code of a TOTP authenticator (RFC 6238:
# 30 s, 6 digits, SHA-1; django-otp's TOTPDevice), on the pages and for an API token. A code is
# taken once (the device keeps the last time step used); failures slow the device down
# exponentially (OTP_TOTP_THROTTLE_FACTOR seconds, doubling) and count against the login throttle.
OTP_TOTP_ISSUER = "预付卡资金存管平台"  # the name authenticator apps show beside the account
OTP_TOTP_THROTTLE_FACTOR = 1
# A regulator's session ends after this long without a request (and on logging out); the next
# page asks for the password and the code again.
REGULATOR_SESSION_IDLE_MINUTES = env_int(
    "REGULATOR_SESSION_IDLE_MINUTES", 30, doc="Minutes of inactivity after which a regulator's session ends."
)
if REGULATOR_SESSION_IDLE_MINUTES < 1:
    raise ImproperlyConfigured("REGULATOR_SESSION_IDLE_MINUTES must be at least 1")

# The public record (/p/merchants/, /api/v1/public/...): no login, so each client address may ask
# PUBLIC_RATE_LIMIT times a minute (a fixed window counted in the cache), and a merchant's figures
# are computed at most once every PUBLIC_RECORD_CACHE_SECONDS.
PUBLIC_RATE_LIMIT = env_int("PUBLIC_RATE_LIMIT", 60, doc="Public-record requests per client address per minute.")
PUBLIC_RECORD_CACHE_SECONDS = env_int(
    "PUBLIC_RECORD_CACHE_SECONDS",
    300,
    doc="Seconds a merchant's public record is cached (and may be cached by browsers).",
)
if PUBLIC_RATE_LIMIT < 1 or PUBLIC_RECORD_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("PUBLIC_RATE_LIMIT must be at least 1 and PUBLIC_RECORD_CACHE_SECONDS 0 or more")
# The cache the rate limit counts in and the public record is kept in: shared by every web process
# when CACHE_URL names Redis; each process's own memory otherwise.
CACHE_URL = env_str("CACHE_URL", "", doc="Shared cache, e.g. redis://host:6379/1; empty: each process's memory.")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
AXES_VERBOSE = False  # no banner on every manage.py command
AXES_DISABLE_ACCESS_LOG = True  # failures are kept (until they expire); successful logins are not

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
    doc="Database; default an embedded SQLite file, e.g. postgres://user:pass@host:5432/name.",
)
DATABASES = {
    "default": database_config(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, doc="Seconds a database connection is reused.")
    )
}
# The API's hottest reads are prepared once per PostgreSQL session (core/sql.py); turn this off
# behind a proxy that shares sessions between clients (PgBouncer in transaction mode).
DB_PREPARED_STATEMENTS = env_bool(
    "DB_PREPARED_STATEMENTS", True, doc="Prepare the hottest reads once per PostgreSQL session (0 behind PgBouncer)."
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the one writer, and
    # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of deadlocking.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# A streaming replica for what only reads (core/replica.py): the regulator's pages, API, exports
# and reports and the public record; writes and read-after-write stay on the primary.
DATABASE_REPLICA_URL = env_str(
    "DATABASE_REPLICA_URL",
    "",
    doc="A read-only streaming replica of the PostgreSQL database (core/replica.py); empty: none.",
)
REPLICA_READ_PATHS = env_list(
    "REPLICA_READ_PATHS",
    "/r/,/p/,/api/v1/regulator/,/api/v1/public/",
    doc="Path prefixes whose GET and HEAD requests the replica serves.",
)
REPLICA_PIN_SECONDS = env_int(
    "REPLICA_PIN_SECONDS", 10, doc="Seconds a browser's reads stay on the primary after it wrote (0: never)."
)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **database_config(DATABASE_REPLICA_URL, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"]),
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL",
    "filesystem://",
    doc="Celery broker; default the embedded filesystem transport under VAR_DIR, e.g. redis://host:6379/0.",
)
BROKER_EMBEDDED = CELERY_BROKER_URL.startswith(("filesystem://", "memory://"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker" / "queue"
    _done_dir = VAR_DIR / "broker" / "processed"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    _done_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_done_dir),
        "control_folder": str(VAR_DIR / "broker" / "control"),  # else "control/" in the working folder
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
# What people wait for on the default queue, bulk work on its own (core/queues.py); a worker
# started without -Q takes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(bulk_queue(CELERY_TASK_DEFAULT_QUEUE)))
CELERY_TASK_ROUTES = ("core.queues.task_route",)
CELERY_TASK_ACKS_LATE = True  # a task killed mid-run is delivered again; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False, doc="Run tasks inline (tests only).")
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "core.tasks.heartbeat_task",
        "schedule": float(env_int("HEARTBEAT_SECONDS", 30, doc="How often beat asks the worker to prove it runs.")),
    },
    "idempotency-purge": {"task": "core.tasks.idempotency_purge_task", "schedule": crontab(hour=3, minute=30)},
    "outbox-sweep": {"task": "core.tasks.outbox_sweep_task", "schedule": 60.0},
    "cards-activate-due": {"task": "consumers.tasks.cards_activate_due_task", "schedule": 60.0},
    "redemptions-expire-due": {"task": "consumers.tasks.redemptions_expire_due_task", "schedule": 60.0},
    "card-transfers-expire-due": {"task": "consumers.tasks.card_transfers_expire_due_task", "schedule": 60.0},
    "top-ups-settle-due": {"task": "consumers.tasks.top_ups_settle_due_task", "schedule": 60.0},
    "period-pass-accrue": {"task": "consumers.tasks.period_pass_accrue_task", "schedule": crontab(hour=0, minute=5)},
    "settlement-daily": {"task": "merchants.tasks.settlement_daily_task", "schedule": crontab(hour=2, minute=0)},
    "reconciliation-daily": {"task": "escrow.tasks.reconciliation_daily_task", "schedule": crontab(hour=3, minute=0)},
    "ledger-check-daily": {"task": "escrow.tasks.ledger_check_daily_task", "schedule": crontab(hour=3, minute=20)},
    "closures-due": {"task": "merchants.tasks.closures_due_task", "schedule": crontab(minute=15)},
    "relocations-due": {"task": "merchants.tasks.relocations_due_task", "schedule": crontab(minute=20)},
    "operator-changes-due": {"task": "merchants.tasks.operator_changes_due_task", "schedule": crontab(minute=25)},
    "mass-refunds-resume": {"task": "refunds.tasks.mass_refunds_resume_task", "schedule": 60.0},
    "refunds-mark-overdue": {"task": "refunds.tasks.refunds_mark_overdue_task", "schedule": 300.0},
    "complaints-mark-overdue": {"task": "complaints.tasks.complaints_mark_overdue_task", "schedule": 300.0},
    "fanouts-resume": {"task": "notifications.tasks.fanouts_resume_task", "schedule": 60.0},
    "cooling-off-ending": {"task": "consumers.tasks.cooling_off_ending_notify_task", "schedule": crontab(minute=5)},
    "disputes-expire-due": {"task": "consumers.tasks.disputes_expire_due_task", "schedule": 300.0},
    "complaints-due-remind": {"task": "complaints.tasks.complaints_due_remind_task", "schedule": 600.0},
    "risk-nightly": {"task": "regulator.tasks.compute_risk_task", "schedule": crontab(hour=1, minute=30)},
    "filings-check": {"task": "merchants.tasks.filings_check_task", "schedule": crontab(hour=1, minute=0)},
    # The periodic reports of the month and quarter just ended (made on the 1st, found made after).
    "periodic-reports": {
        "task": "regulator.tasks.periodic_reports_scheduled_task",
        "schedule": crontab(hour=4, minute=10),
    },
    "periodic-reports-resume": {"task": "regulator.tasks.periodic_reports_resume_task", "schedule": 120.0},
}

# --- Locale ---------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# English dates with a 24-hour clock (config/formats/en); Chinese uses Django's 年月日 formats.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"), doc="Where collectstatic writes."))
# Uploaded files (filing documents, inspection cases' files): private, never served as static files;
# the pages and the API hand each one to its merchant and the regulator only (merchants.web,
# regulator.web).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media"), doc="Where uploaded documents are kept."))
FILING_DOCUMENT_MAX_BYTES = env_int(
    "FILING_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024, doc="Largest document a merchant may upload with a filing."
)
# An inspection case's files (findings' evidence, the merchant's answers to requests for documents):
# kept in the same private storage, downloaded only by the regulators covering the merchant (and the
# merchant, the files it sent) (regulator.services.cases).
CASE_FILE_MAX_BYTES = env_int(
    "CASE_FILE_MAX_BYTES", 20 * 1024 * 1024, doc="Largest file (PDF, JPEG, PNG) of an inspection case."
)
DISPUTE_EVIDENCE_MAX_BYTES = env_int(
    "DISPUTE_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024, doc="Largest file of evidence a party may attach to a dispute."
)
# --- PDFs ------------------------------------------------------------------------------------
# Every PDF embeds (a subset of) a CJK font with TrueType outlines (core/pdf.py): empty means the
# first of the known Debian paths that exists (fonts-wqy-zenhei, fonts-wqy-microhei, fonts-arphic-uming).
PDF_FONT_PATH = env_str(
    "PDF_FONT_PATH", "", doc="TrueType (.ttf/.ttc) CJK font embedded in the PDFs; empty: search Debian's paths."
)
PLATFORM_CONTACT = env_str(
    "PLATFORM_CONTACT",
    "北京市单用途预付卡资金托管平台运营中心 电话 010-12345678 邮箱 service@prepaid-escrow.local",
    doc="The platform operator's contact, printed in every PDF's footer.",
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# The API's tags in Chinese and English, in the order the docs page lists them (/api/v1/docs/).
API_TAGS = {
    "auth": ("登录与令牌", "Sign-in and tokens"),
    "me": ("当前用户及其角色", "The signed-in user and their role"),
    "consumers": ("消费者注册与资料", "Consumers: sign-up and profile"),
    "merchants": ("商户名录与商户信息", "The merchant directory and a merchant's profile"),
    "products": ("商户的预付卡产品", "A merchant's prepaid card products"),
    "cards": ("购卡、付款、冷静期、退卡与电子合同", "Cards: purchase, payment, cooling-off, refunds, the contract"),
    "redemptions": (
        "服务核销：商户发起，持卡人确认后划付",
        "Services: started by the merchant, released on the holder's confirmation",
    ),
    "payments": ("付款与支付网关", "Payments and the payment gateways"),
    "webhooks": ("支付网关回调", "Payment gateways' callbacks"),
    "merchant": ("商户自己的卡、服务、结算与对账单", "The merchant's own cards, services, settlements and statements"),
    "filings": ("商户备案", "Merchants' filings (备案)"),
    "public": ("商户公示信息（无需登录）", "Merchants' public record (no login)"),
    "complaints": ("投诉与 12345 热线工单", "Complaints and 12345 hotline work orders"),
    "disputes": (
        "服务申诉：商户对被拒确认的服务提出申诉，双方举证，监管部门裁决",
        "Disputes: a merchant contests a rejected service, both sides bring evidence, the regulator decides",
    ),
    "notifications": ("站内通知", "In-app notices"),
    "regulator": (
        "市场监管：风险评分、监管措施、退款、审计日志与报告",
        "Supervision: risk, measures, refunds, the audit log and reports",
    ),
    "rules": ("现行规则及其依据", "The rules in force and their legal basis"),
    "cases": (
        "监督检查案件：发现、向商户调取材料、监管措施与案件报告",
        "Inspection cases: findings, documents asked of the merchant, measures and the case report",
    ),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "预付卡资金存管平台 API · Prepaid card escrow platform API",
    "DESCRIPTION": (
        "北京市单用途预付卡资金存管平台的接口：购卡资金进入存管账户，冷静期内可全额退卡，"
        "每次服务经持卡人确认后按份额划付商户，退款、投诉与市场监管部门的监管措施均有记录可查。"
        "金额以分为单位的整数表示（人民币），时间为 ISO 8601（UTC），页面上的时间为北京时间。"
        "消费者、商户与监管人员使用令牌（Token）认证；错误以 `{code, detail}` 返回。\n\n"
        "The API of Beijing's escrow platform for single-purpose prepaid cards: a card's payment is held "
        "in escrow, the holder may return the card in full during the cooling-off period, each service "
        "the holder confirms releases its share to the merchant, and refunds, complaints and the market "
        "regulator's measures are all on record. Amounts are integer fen (CNY); times are ISO 8601 (UTC), "
        "shown in Beijing time on the pages. Consumers, merchants and regulators authenticate with a "
        "token; errors come back as `{code, detail}`."
    ),
    # Each tag described in both languages: the docs page shows them above each group of operations.
    "TAGS": [{"name": name, "description": f"{zh} · {en}"} for name, (zh, en) in API_TAGS.items()],
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Merchants and complaints both have a "category": keep the merchants' enum name, name the other.
    "ENUM_NAME_OVERRIDES": {
        "CategoryEnum": "merchants.models.Merchant.Category",
        "ComplaintCategoryEnum": "complaints.models.Complaint.Category",
        # Products and cards share a "kind"; the audit log's rows have another.
        "ProductKindEnum": "merchants.models.Product.Kind",
        # A refund's reason and state, and the reasons a consumer or the regulator may ask for.
        "RefundReasonEnum": "refunds.models.Refund.Reason",
        "RefundStateEnum": "refunds.models.Refund.State",
        "ConsumerRefundReasonEnum": "refunds.services.CONSUMER_REASONS",
        "RegulatorRefundReasonEnum": "regulator.api.refunds.REGULATOR_REASONS",
        # A merchant's trading status and what is known of its filing (备案), in several responses.
        "MerchantStatusEnum": "merchants.models.Merchant.Status",
        "FilingStatusEnum": "merchants.selectors.FILING_STATUSES",
        # A card's state, a top-up's and a card transfer's.
        "CardStateEnum": "consumers.models.Card.State",
        "TopUpStateEnum": "consumers.models.TopUp.State",
        "CardTransferStateEnum": "consumers.models.CardTransfer.State",
        # An inspection case's state and its requests for documents' (regulator.models).
        "InspectionCaseStateEnum": "regulator.models.InspectionCase.State",
        "DocumentRequestStateEnum": "regulator.models.DocumentRequest.State",
        # A dispute's state, how it ended, a piece of evidence's party, and the regulator's outcomes.
        "DisputeStateEnum": "consumers.models.Dispute.State",
        "DisputeEndedByEnum": "consumers.models.Dispute.EndedBy",
        "DisputeEvidencePartyEnum": "consumers.models.DisputeEvidence.Party",
        "DisputeOutcomeEnum": "consumers.disputes.OUTCOMES",
        # What a line of a holder's statement was (cards and products have a "kind" of their own).
        "StatementLineKindEnum": "refunds.holder_statement.STATEMENT_KINDS",
    },
}
# E-mail (closure notices). The console backend prints them; set EMAIL_URL-style settings in production.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", doc="Django e-mail backend for notices."
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost", doc="SMTP host (with the SMTP backend).")
EMAIL_PORT = env_int("EMAIL_PORT", 25, doc="SMTP port.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@prepaid-escrow.local", doc="Sender of notices.")

# SMS (notifications.sms): "console" writes each message to the log; "aliyun" sends it through
# Alibaba Cloud's SMS service (Dysmsapi SendSms) with pre-approved templates.
SMS_BACKEND = env_str("SMS_BACKEND", "console", doc="SMS backend: console or aliyun.")
if SMS_BACKEND not in ("console", "aliyun"):
    raise ImproperlyConfigured("SMS_BACKEND must be 'console' or 'aliyun'")
SMS_ALIYUN_ACCESS_KEY_ID = env_str(
    "SMS_ALIYUN_ACCESS_KEY_ID", "", doc="Alibaba Cloud AccessKey ID (SMS_BACKEND=aliyun)."
)
SMS_ALIYUN_ACCESS_KEY_SECRET = env_str(
    "SMS_ALIYUN_ACCESS_KEY_SECRET", "", doc="Alibaba Cloud AccessKey secret (SMS_BACKEND=aliyun)."
)
SMS_ALIYUN_ENDPOINT = env_str("SMS_ALIYUN_ENDPOINT", "dysmsapi.aliyuncs.com", doc="Dysmsapi endpoint host.")
SMS_ALIYUN_PROTOCOL = env_str("SMS_ALIYUN_PROTOCOL", "https", doc="Protocol to the endpoint (https; http for tests).")
SMS_ALIYUN_SIGN_NAME = env_str("SMS_ALIYUN_SIGN_NAME", "", doc="Approved SMS signature (签名).")
SMS_ALIYUN_TEMPLATE_CODE = env_str("SMS_ALIYUN_TEMPLATE_CODE", "", doc="Default approved template code (SMS_...).")
SMS_ALIYUN_TEMPLATES = dict(
    item.split("=", 1)
    for item in env_list("SMS_ALIYUN_TEMPLATES", "", doc="Per-kind template codes: kind=SMS_...,kind=SMS_...")
    if "=" in item
)
if SMS_BACKEND == "aliyun" and not (
    SMS_ALIYUN_ACCESS_KEY_ID and SMS_ALIYUN_ACCESS_KEY_SECRET and SMS_ALIYUN_SIGN_NAME and SMS_ALIYUN_TEMPLATE_CODE
):
    raise ImproperlyConfigured(
        "SMS_BACKEND=aliyun needs SMS_ALIYUN_ACCESS_KEY_ID, SMS_ALIYUN_ACCESS_KEY_SECRET, "
        "SMS_ALIYUN_SIGN_NAME and SMS_ALIYUN_TEMPLATE_CODE"
    )

# Bodies larger than this are refused before parsing (bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- Domain ---------------------------------------------------------------------------------
# Number of independent hash chains the journal is striped over (see escrow/models.py). One chain
# would make every posting wait for every other; entries of one card always share a chain.
LEDGER_CHAIN_STRIPES = env_int("LEDGER_CHAIN_STRIPES", 64, doc="Hash-chain stripes of the journal (1-1024).")
if not 1 <= LEDGER_CHAIN_STRIPES <= 1024:
    raise ImproperlyConfigured("LEDGER_CHAIN_STRIPES must be between 1 and 1024")
SETTLEMENT_CHUNK = env_int(
    "SETTLEMENT_CHUNK",
    2000,
    doc="Merchants settled (and, with the local bank, paid) per transaction by the daily settlement.",
)
if SETTLEMENT_CHUNK < 1:
    raise ImproperlyConfigured("SETTLEMENT_CHUNK must be at least 1")
SETTLEMENT_WORKERS = env_int(
    "SETTLEMENT_WORKERS",
    2,
    doc="Connections the daily settlement pays chunks on at once with the local bank (PostgreSQL; 1: one at a time).",
)
if SETTLEMENT_WORKERS < 1:
    raise ImproperlyConfigured("SETTLEMENT_WORKERS must be at least 1")
LEDGER_FULL_CHECK_DAYS = env_int(
    "LEDGER_FULL_CHECK_DAYS", 7, doc="Days between the nightly ledger check's full runs (from genesis)."
)
IDEMPOTENCY_KEY_TTL_HOURS = 24

# The rules profile (core/profiles/<RULES_PROFILE>.json; README "Rules profiles"): the city's rules,
# each citing its basis. It is checked here, so a broken or missing profile stops the start-up with
# the file and the field named. The settings below default to its values; setting one of them in
# the environment overrides the profile (core.rules.rule() reports it in ``overridden_by``).
RULES_PROFILE = env_str("RULES_PROFILE", "beijing", doc="Rules profile: a file name in core/profiles/ (beijing).")
_RULES = profile_defaults(RULES_PROFILE)

# The statutory cooling-off period: the purchase day is not counted; it ends at 24:00 Beijing time
# on the COOLING_OFF_DAYS-th day after it, or later when that day is a statutory holiday (core/calendar.py).
COOLING_OFF_DAYS = env_int(
    "COOLING_OFF_DAYS", _RULES["cooling_off_days"], doc="Days of the statutory cooling-off period."
)
# A refund must reach the consumer within REFUND_DUE_DAYS of the request (its ``due_by``).
REFUND_DUE_DAYS = env_int(
    "REFUND_DUE_DAYS", _RULES["refund_due_days"], doc="Days a refund may take to be paid before it is overdue."
)
# Card limits, as data. Breaking one is 400 card_limit_exceeded naming the rule.
CARD_LIMITS = {
    "max_price": env_int("CARD_MAX_PRICE", _RULES["max_price"], doc="Highest card price in fen (the national cap)."),
    "education_max_sessions": env_int(
        "EDUCATION_MAX_SESSIONS", _RULES["education_max_sessions"], doc="Most sessions an education card may sell."
    ),
    "education_max_days": env_int(
        "EDUCATION_MAX_DAYS", _RULES["education_max_days"], doc="Longest period an education pass may sell."
    ),
}
# Merchant risk (regulator.services.risk): each signal is normalised to 0..1 and weighted; the
# weights sum to 100, so the score is 0-100. The level is high at RISK_LEVEL_HIGH and above.
RISK_WEIGHTS = {
    "escrow_outstanding": 5,
    "months_owed": 15,
    "sales_surge": 20,
    "redemption_drop": 15,
    "discount_depth": 10,
    "complaints_per_100_cards": 10,
    "overdue_complaints": 5,
    "refund_rate": 5,
    "rejected_redemptions": 5,
    "filing_threshold": 5,
    "refunds_late": 5,
}
RISK_LEVEL_MEDIUM = env_int("RISK_LEVEL_MEDIUM", 30, doc="Risk score from which a merchant is medium risk.")
RISK_LEVEL_HIGH = env_int("RISK_LEVEL_HIGH", 60, doc="Risk score from which a merchant is high risk (auto-flagged).")
RISK_FILING_THRESHOLD = env_int(
    "RISK_FILING_THRESHOLD",
    _RULES["filing_balance_threshold"],
    doc="Escrow in fen at which a merchant must file (Beijing: 500,000 yuan).",
)
RISK_AUTO_FLAG = env_bool("RISK_AUTO_FLAG", True, doc="Flag a merchant automatically when its risk turns high.")
REDEMPTION_TTL_MINUTES = env_int("REDEMPTION_TTL_MINUTES", 15, doc="Minutes a consumer has to confirm a service.")
# Card transfers (consumers.services_transfers): hours an offer waits for the other consumer's answer.
CARD_TRANSFER_TTL_HOURS = env_int(
    "CARD_TRANSFER_TTL_HOURS", 72, doc="Hours a card transfer offer waits for an answer before it expires."
)
# Complaints (complaints.services): hours a merchant has to answer, from when the
# complaint was received (the hotline's call time for hotline work orders).
COMPLAINT_RESPONSE_HOURS = env_int(
    "COMPLAINT_RESPONSE_HOURS", _RULES["complaint_response_hours"], doc="Hours a merchant has to answer a complaint."
)
COMPLAINT_URGENT_RESPONSE_HOURS = env_int(
    "COMPLAINT_URGENT_RESPONSE_HOURS",
    _RULES["complaint_urgent_response_hours"],
    doc="Hours a merchant has to answer an urgent complaint.",
)
if COMPLAINT_RESPONSE_HOURS < 1 or COMPLAINT_URGENT_RESPONSE_HOURS < 1:
    raise ImproperlyConfigured("COMPLAINT_RESPONSE_HOURS and COMPLAINT_URGENT_RESPONSE_HOURS must be at least 1")

# Payments: "local" is the built-in sandbox of the custody bank; "stripe" uses Stripe.
PAYMENT_GATEWAY = env_str("PAYMENT_GATEWAY", "local", doc="Payment gateway: local or stripe.")
if PAYMENT_GATEWAY not in ("local", "stripe"):
    raise ImproperlyConfigured("PAYMENT_GATEWAY must be 'local' or 'stripe'")
STRIPE_API_KEY = env_str("STRIPE_API_KEY", "", doc="Stripe secret key (PAYMENT_GATEWAY=stripe).")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "", doc="Secret that signs Stripe's webhooks.")
STRIPE_API_BASE = env_str(
    "STRIPE_API_BASE", "https://api.stripe.com", doc="Stripe API address (tests point it at a local server)."
)
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300, doc="Seconds a signed webhook stays acceptable.")
if PAYMENT_GATEWAY == "stripe" and not (STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET")
# The sandbox bank refuses every refund while this is on (to rehearse failed refunds and retries).
SANDBOX_REFUSE_REFUNDS = env_bool(
    "SANDBOX_REFUSE_REFUNDS", False, doc="The local sandbox bank refuses refunds (rehearsals and tests)."
)
# Outbox: attempts before a message is left for an operator, and the first retry delay (doubling).
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 6, doc="Attempts to send a gateway call before giving up.")
OUTBOX_RETRY_SECONDS = env_int(
    "OUTBOX_RETRY_SECONDS", 30, doc="First retry delay of a gateway call; doubles each time."
)

# --- Operations (README "Operations") -----------------------------------------------------------
# /metrics (core.metrics) answers 404 until one of the two is set; with both, a scrape needs both.
METRICS_TOKEN = env_str(
    "METRICS_TOKEN", "", doc="Bearer token Prometheus sends to read /metrics; empty: no token accepted."
)
METRICS_ALLOWED_IPS = env_list(
    "METRICS_ALLOWED_IPS", "", doc="Comma-separated addresses or networks (CIDR) allowed to read /metrics."
)
try:
    [ipaddress.ip_network(item, strict=False) for item in METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {exc}") from exc
METRICS_STATEMENT_TIMEOUT_MS = env_int(
    "METRICS_STATEMENT_TIMEOUT_MS",
    2000,
    doc="Longest a metrics scrape's query may run (PostgreSQL) before its gauges are left out.",
)
# Several gunicorn workers: an empty folder shared by them, emptied at each start, in which
# prometheus_client adds up every worker's request counts (its multiprocess mode reads the variable).
PROMETHEUS_MULTIPROC_DIR = env_str(
    "PROMETHEUS_MULTIPROC_DIR",
    "",
    doc="Folder where gunicorn's workers keep their request metrics; empty: per process.",
)

# --- Logging --------------------------------------------------------------------------------
# One JSON object a line with the request id in production; the message alone in development.
LOG_FORMAT = env_str(
    "LOG_FORMAT",
    "text" if DEBUG else "json",
    doc="Log lines: json (with the request id) or text; default json unless DJANGO_DEBUG.",
)
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env_str("DJANGO_LOG_LEVEL", "INFO", doc="Root log level."))

SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)
