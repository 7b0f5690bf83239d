"""Create the stack's users and API tokens in one Nautobot database (run with the Nautobot venv's python).

Arguments: instance:purpose:key:write_enabled ... where purpose is `admin` (user admin) or `sync`
(user veritas-sync). Both users are superusers; a token with write_enabled=0 can only read.
"""

import sys

import nautobot

nautobot.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from nautobot.users.models import Token  # noqa: E402

USERNAMES = {"admin": "admin", "sync": "veritas-sync"}

User = get_user_model()
for spec in sys.argv[1:]:
    _instance, purpose, key, write_enabled = spec.split(":")
    user, _ = User.objects.get_or_create(username=USERNAMES[purpose], defaults={"is_superuser": True, "is_staff": True})
    if not user.is_superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    Token.objects.filter(key=key).exclude(user=user).delete()
    Token.objects.update_or_create(key=key, defaults={"user": user, "write_enabled": write_enabled == "1",
                                                      "description": f"veritas stack {purpose}"})
    print(f"token for {user.username} (write_enabled={write_enabled == '1'}) ready")
