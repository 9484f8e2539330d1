"""The one error type users see.

Every message says what went wrong, the offending value, the limit or rule it broke, and how to fix it.
The CLI catches it once and prints it without a traceback (unless ``--debug``).
"""

from __future__ import annotations


class PangeoError(Exception):
    """A user-facing error: ``what`` happened, and optionally ``fix`` says what to do about it."""

    def __init__(self, what: str, fix: str | None = None, *, exit_code: int = 2):
        self.what = what
        self.fix = fix
        self.exit_code = exit_code
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.what}\n  fix: {self.fix}" if self.fix else self.what
