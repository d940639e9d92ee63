"""Errors for user mistakes: each message names the problem and the fix.

The command line prints such an error as one line on stderr and exits with
status 2; anything else is a bug and keeps its traceback.
"""


class InpaintError(Exception):
    """Base class of every error a user can fix by changing their input."""


class DataError(InpaintError):
    """A data source, partition file or data spec that cannot be used."""


class MaskError(InpaintError):
    """An unknown mask kind, or a mask file that cannot be used."""


class ConfigError(InpaintError):
    """An unknown profile, parameter or option value."""
