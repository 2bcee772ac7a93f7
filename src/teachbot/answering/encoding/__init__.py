"""Sentence encoding: texts to vectors of meaning, offline on the CPU.

``load_encoder(settings.encoder)`` gives an ``Encoder`` (or None when the setting is ``none``);
``CachedEncoder(encoder, settings.cache_dir)`` remembers its vectors on disk between runs.
"""

from teachbot.answering.encoding.cache import CachedEncoder
from teachbot.answering.encoding.encoder import MAX_TOKENS, Encoder, OnnxEncoder
from teachbot.answering.encoding.models import load_encoder

__all__ = ["MAX_TOKENS", "CachedEncoder", "Encoder", "OnnxEncoder", "load_encoder"]
