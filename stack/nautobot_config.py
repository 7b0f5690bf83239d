"""Nautobot settings for the local stack: one file serves both servers, the environment picks the database.

Loopback only, no outbound calls (installation metrics off), and a private Redis database pair per
instance so the two servers never share cache entries.
"""

import os

from nautobot.core.settings import *  # noqa: F401,F403
from nautobot.core.settings import CACHES  # noqa: F401

SECRET_KEY = os.environ["VERITAS_STACK_SECRET_KEY"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLATION_METRICS_ENABLED = False

_redis_port = os.environ["NAUTOBOT_REDIS_PORT"]
_redis_db = int(os.environ.get("VERITAS_STACK_REDIS_DB", "0"))
CACHES["default"]["LOCATION"] = f"redis://127.0.0.1:{_redis_port}/{_redis_db + 1}"
CELERY_BROKER_URL = f"redis://127.0.0.1:{_redis_port}/{_redis_db}"
