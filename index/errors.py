"""Errors of the index stage."""
from corpus.errors import CrampbotError


class IndexMismatch(CrampbotError):
    """A built index does not match the current settings or corpus and rebuilding is off."""
