"""One error hierarchy for the whole product.

The CLI turns :class:`ReconsentError` into a one-line message and exit code 1; the web layer turns it
into a 4xx page. Adapters translate library exceptions (aiosmtplib, twilio) into the send errors below
at their boundary, so nothing else ever sees a library exception.
"""

from __future__ import annotations


class ReconsentError(Exception):
    """A request was refused or failed for a reason the user can act on."""


class ConfigError(ReconsentError):
    """A setting is missing or invalid. The message names the key and what is expected."""


class InputError(ReconsentError):
    """A user-supplied file or argument is invalid. The message names the row/field."""


class NotFoundError(ReconsentError):
    """The thing asked for does not exist."""


class StateError(ReconsentError):
    """The action is not allowed in the current state (e.g. launching a running campaign)."""


class SendError(ReconsentError):
    """A message could not be handed to its channel."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientSendError(SendError):
    """Try again later: 4xx reply, timeout, dropped connection, rate limit."""

    def __init__(self, reason: str, *, code: str | None = None, retry_after: float | None = None):
        super().__init__(reason, code=code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Never retry this message. ``suppress`` says the address itself is dead or opted out."""

    def __init__(self, reason: str, *, code: str | None = None, suppress: str | None = None):
        super().__init__(reason, code=code)
        #: suppression reason to record for the address (bounced, sms_stop), or None
        self.suppress = suppress


class TemplateProblems(InputError):
    """Templates refused: every problem found, one line each (``reconsent templates import``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RequestExpired(StateError):
    """An answer came after the deadline sweep expired the person's request: the campaign is over and
    nothing was recorded (the sweep's expiry, suppression and retention stand)."""
