"""The Celery app: JSON only, time limits, tasks discovered in the Django apps.

Without CELERY_BROKER_URL the settings make every task run eagerly in the calling process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")

app = Celery("auditproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
