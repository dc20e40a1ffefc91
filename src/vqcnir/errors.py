"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""


class VQCNIRError(Exception):
    """A problem with what the user gave us (a path, an image, a checkpoint, a config)."""


class OutputExistsError(VQCNIRError):
    """The output file exists (perhaps written by another run meanwhile) and was kept."""
