"""Messages between regulators and operators (B8), with the notification entry point other domains call."""

from services.messaging.notify import notify_operator, notify_operators

__all__ = ["notify_operator", "notify_operators"]
