"""Domain errors: rules of the business that a request or a worker broke."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused a change; nothing was recorded."""


class IllegalJobTransition(DomainError):
    """The job cannot move from its current status in the way asked."""


class InsufficientCredits(DomainError):
    def __init__(self, required: int, balance: int) -> None:
        super().__init__(f"This render needs {required} credits; the balance is {balance}.")
        self.required = required
        self.balance = balance


class ConcurrencyLimitExceeded(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The plan allows {limit} queued or processing jobs at once; wait for one to finish."
        )
        self.limit = limit


class DuplicateCharge(DomainError):
    """A job was charged, or refunded, twice."""


class AccountNotFound(DomainError):
    pass


class JobNotFound(DomainError):
    pass
