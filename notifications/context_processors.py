"""The bell: the logged-in consumer's or merchant's unread count on every page (one COUNT on the
partial index of unread notices)."""

from notifications.selectors import notifications_unread_count


def bell(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(user, "role", "") not in ("consumer", "merchant"):
        return {}
    return {"bell": True, "unread_notifications": notifications_unread_count(user=user)}
