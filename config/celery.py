"""The Celery application: worker and beat both start from ``celery -A config``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prepaid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
