"""Compression Explorer core: a library that never imports streamlit and never prints.

Every compression function takes a model and a frozen config and returns a *new* model;
the model it was given is never modified (models cached by the app are shared by all users).
"""

__version__ = "0.1.0"


class CompressionError(ValueError):
    """A user-facing error: bad input, missing data, an unusable file.

    The message is one line that names the bad value; the CLI prints it and exits non-zero,
    the pages show it with st.error. Anything else escaping the core is a bug.
    """
