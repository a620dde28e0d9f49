"""The one exception type a user sees: bad input or an unusable file, said in one line."""


class UserError(ValueError):
    """Bad input from a user (prompt, argument, file): shown as one `error:` line, never a stack trace."""
