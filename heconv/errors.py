"""The one error type for what a user can fix (a bad option, file, shape or parameter).

The command line prints an `InputError` as one line and exits 2; any other exception is a
bug and shows its traceback under `-v`. It subclasses ValueError, so callers that caught
ValueError before still catch it.

>>> issubclass(InputError, ValueError)
True
"""


class InputError(ValueError):
    """Something the user gave (an option, a file, a shape, a parameter) is not usable; the
    message names the layer or option, what was given and what was expected."""
