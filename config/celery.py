"""The Celery application: worker and beat both start from ``celery -A config``."""

import os

from celery import Celery

from core.logging import celery_request_id_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prepaid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A task carries the id of the request that enqueued it; the worker logs as LOG_FORMAT says.
celery_request_id_connect()
