"""The errors that reach the user as one line on stderr and a non-zero exit, never a traceback."""


class MnistlabError(Exception):
    """Base of every error whose message is meant for the user (one line)."""


class DataError(MnistlabError, ValueError):
    """A data set or an input array that cannot be used: missing, truncated, malformed.

    Also a ``ValueError``, as numpy and scikit-learn raise for bad input, so code written for
    them catches it too."""


class ModelFileError(MnistlabError):
    """A saved model that cannot be loaded: corrupt, or its config does not fit."""
