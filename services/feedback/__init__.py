"""Citizens' feedback (B9): suggestions and repair reports, routed to operators, looked up by ticket."""

from services.feedback.service import FEEDBACK, KINDS, submit

__all__ = ["FEEDBACK", "KINDS", "submit"]
