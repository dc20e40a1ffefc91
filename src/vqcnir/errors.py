"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""


class VQCNIRError(Exception):
    """A problem with what the user gave us (a path, an image, a checkpoint, a config)."""


class OutputExistsError(VQCNIRError):
    """The output file exists (perhaps written by another run meanwhile) and was kept."""


def one_line(error: BaseException) -> str:
    """An exception as one short line (a codec's or the OS's complaint, shown to the user)."""
    text = " ".join(str(error).split())
    if not text:
        return type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
