"""Sentence encoding: texts to vectors of meaning, offline on the CPU.

``load_encoder(settings.encoder)`` gives an ``Encoder`` (or None when the setting is ``none``);
``lazy_encoder`` the same, loaded on first use; ``CachedEncoder(encoder, settings.cache_dir)`` remembers
its vectors on disk between runs (``uncached`` reaches the encoder behind it, for one-off questions).
"""

from teachbot.answering.encoding.cache import CachedEncoder, uncached
from teachbot.answering.encoding.encoder import MAX_TOKENS, Encoder, OnnxEncoder
from teachbot.answering.encoding.lazy import LazyEncoder, release_model
from teachbot.answering.encoding.models import lazy_encoder, load_encoder

__all__ = [
    "MAX_TOKENS",
    "CachedEncoder",
    "Encoder",
    "LazyEncoder",
    "OnnxEncoder",
    "lazy_encoder",
    "load_encoder",
    "release_model",
    "uncached",
]
