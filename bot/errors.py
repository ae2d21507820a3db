"""Domain errors of the payment flow. What the person is told for each (any error) is the
Slack side's business: the one table in handlers/errors.py."""

from __future__ import annotations


class InvoiceUnavailable(Exception):
    """The invoice does not exist (or is not visible to this person)."""


class InvoiceNotPayable(Exception):
    def __init__(self, number: str, status: str) -> None:
        super().__init__(status)
        self.number = number
        self.status = status


class FormExpired(Exception):
    """The modal's server-side session is gone or belongs to someone else."""


class FieldProblem(Exception):
    """Bad input in one field of the pay form; shown under that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class PaymentAlreadyInProgress(Exception):
    def __init__(self, started_by: str | None, *, awaiting_approval: bool = False) -> None:
        super().__init__("in progress")
        self.started_by = started_by
        self.awaiting_approval = awaiting_approval  # the slot is held by a request for approval


class ApprovalProblem(Exception):
    """An approvals command that cannot be carried out; the message is for the user."""


class NoApproverAvailable(Exception):
    """The amount needs approval, but nobody other than the requester may give it."""
