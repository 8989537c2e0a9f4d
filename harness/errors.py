"""User-facing errors: the command line prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (a file, a field, a flag). The message names what is at fault."""
