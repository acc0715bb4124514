"""Errors the train / validate scripts report as one line (`error: ...`) and a non-zero exit status."""

__all__ = ['RunError', 'CheckpointError', 'NonFiniteLossError']


class RunError(Exception):
    """Bad input or a fault that stops a run; the message names the problem and, where there is one, the fix."""


class CheckpointError(RunError):
    """A checkpoint is missing, unreadable (e.g. truncated), or does not fit the model."""


class NonFiniteLossError(RunError):
    """The training loss became NaN or infinite; training stopped before any checkpoint held the weights it made."""
