"""How the ``genlab`` command reports an error: one line with a hint, and an exit code.

Bad input (a typed genlab error, a file that cannot be read or written, memory that runs out)
exits with 2; anything else is a bug and exits with 1, asking for ``--debug``'s traceback.

Example:
    >>> from genlab.errors import DataError
    >>> error_line(DataError("Expected finite x, but found NaN."))
    ('Expected finite x, but found NaN.', 2)
    >>> error_line(MemoryError())[0]
    "out of memory (MemoryError); lower --batch-size (or -n, --n-samples, the model's size)"
"""

from __future__ import annotations

from genlab.errors import GenlabError
from genlab.memory import is_out_of_memory

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def one_line(text: object) -> str:
    """``str(text)`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())


def error_line(err: BaseException) -> tuple[str, int]:
    """The one line (message and hint) and exit code that the CLI gives for ``err``.

    Returns:
        ``(line, exit_code)``; the line holds no newline.
    """
    from PIL import Image, UnidentifiedImageError

    what = one_line(err) or type(err).__name__
    named = f"{type(err).__name__}: {what}" if one_line(err) else type(err).__name__
    if isinstance(err, GenlabError):
        return what, EXIT_USAGE
    if is_out_of_memory(err):
        return (f"out of memory ({named[:200]}); lower --batch-size "
                "(or -n, --n-samples, the model's size)"), EXIT_USAGE
    if isinstance(err, Image.DecompressionBombError):
        return (f"image too large to read safely ({what}); use smaller images"), EXIT_USAGE
    if isinstance(err, UnidentifiedImageError):
        return f"cannot read an image ({what}); expected PNG files", EXIT_USAGE
    if isinstance(err, PermissionError):
        return (f"permission denied: {err.filename or what}; choose a folder you can write "
                "to (--out, -o)"), EXIT_USAGE
    if isinstance(err, OSError):
        where = f": {err.filename}" if err.filename else ""
        return (f"{err.strerror or what}{where}; check the path, its permissions and free "
                "disk space"), EXIT_USAGE
    if isinstance(err, (TypeError, ValueError)):
        return (f"{named}; check the values given to --param/--option "
                "(`genlab list MODEL`), or rerun with --debug for a bug report"), EXIT_USAGE
    return (f"internal error ({named}); rerun with --debug and report "
            "the traceback"), EXIT_INTERNAL


__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_USAGE", "error_line", "one_line"]
