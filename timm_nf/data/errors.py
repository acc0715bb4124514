"""The error every dataset reader and the dataset factory raise for bad input (one line: problem and fix)."""

__all__ = ['DatasetError']


class DatasetError(ValueError):
    """A dataset cannot be created from the given name / directory / split (the message says why)."""
