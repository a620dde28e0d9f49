"""The one exception type a CLI turns into a one-line message and exit code 2."""


class UserError(ValueError):
    """Bad input from the person running ditkit: a message naming the bad value, no traceback."""
