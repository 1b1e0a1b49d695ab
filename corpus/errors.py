"""Base exception of the project (defined here, the first stage, so every stage can use it)."""


class CrampbotError(Exception):
    """Base class: its message is one sentence safe to show to a user."""


class CorpusError(CrampbotError):
    """A source file, the sources manifest or the glossary cannot be read."""
