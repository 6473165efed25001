"""The one error a raw file that cannot be used at all raises, whatever step found it."""


class RawFileError(Exception):
    """A raw file that cannot be used at all: the message names the file and what to do."""
