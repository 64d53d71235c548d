"""Sign-ins and failed sign-ins go on the audit trail."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from orchestration.services.audit import record_event


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_event(action="user.login", actor=user, object_type="user", object_id=user.pk)


@receiver(user_login_failed)
def audit_failed_login(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # Only the username is kept; the password never reaches the trail.
    record_event(
        action="user.login_failed",
        actor_label="anonymous",
        object_type="user",
        after={"username": str(credentials.get("username", ""))[:150]},
    )
