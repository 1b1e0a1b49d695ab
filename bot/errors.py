"""The project's exception types, gathered; each message is one sentence a user can act on."""
from corpus.errors import CorpusError, CrampbotError
from index.embedding import EmbeddingModelMissing
from index.errors import IndexMismatch
from index.store import IndexBusy


class ConfigError(CrampbotError):
    """Settings, preset or config file are wrong."""


class ModelNotAvailable(CrampbotError):
    """A configured model cannot be found, assembled or verified."""


__all__ = [
    "CrampbotError", "CorpusError", "IndexMismatch", "IndexBusy", "EmbeddingModelMissing",
    "ConfigError", "ModelNotAvailable",
]
