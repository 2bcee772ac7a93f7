"""An encoder that loads its model when first needed, or in the background as soon as asked to.

Loading the bundled model (importing onnxruntime, starting a session) takes about half a second; a command
that never encodes should not pay it, and the bot should not wait for it before it can start. The model id
comes from hashing the files only, so stored model versions can be matched with the encoder without loading it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from teachbot.answering.encoding.cache import uncached
from teachbot.answering.encoding.encoder import Encoder, ModelFileError, ModelFiles, OnnxEncoder, identify
from teachbot.errors import ConfigError
from teachbot.memory import page_out_files

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The packages whose native code runs only while a model is loaded: paged out when it is released.
_MODEL_PACKAGES = ("onnxruntime", "tokenizers")


class LazyEncoder:
    """An ``Encoder`` over model files, loaded on first ``encode`` (or ``start``); safe from any thread.

    A model that cannot be loaded raises ``ConfigError`` from ``model_id``, ``dim`` or ``encode``, with a
    message naming the setting (``describe`` turns a file problem into that message)."""

    def __init__(self, files: ModelFiles, *, threads: int = 2, describe: Callable[[str], str] = str) -> None:
        self._files = files
        self._threads = threads
        self._describe = describe
        self._lock = threading.Lock()  # loading
        self._id_lock = threading.Lock()  # hashing the files (never waits for a load)
        self._model_id: str | None = None
        self._loaded: OnnxEncoder | None = None
        self._failure: str | None = None
        self._loader: threading.Thread | None = None

    @property
    def model_id(self) -> str:
        with self._id_lock:
            if self._model_id is None:
                self._model_id = self._checked(lambda: identify(self._files))
            return self._model_id

    @property
    def dim(self) -> int:
        return self.loaded().dim

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.loaded().encode(texts)

    def reads(self, text: str) -> bool:
        return self.loaded().reads(text)

    def start(self) -> None:
        """Begin loading in a background thread (at most once), so the first question does not wait for it."""
        with self._lock:
            if self._loader is not None or self._loaded is not None:
                return
            self._loader = threading.Thread(target=self._load_quietly, name="encoder-load", daemon=True)
            self._loader.start()

    def close(self) -> None:
        """Wait for a background load to end: a process that exits while onnxruntime is still starting its
        session in another thread is aborted ("terminate called without an active exception")."""
        loader = self._loader
        if loader is not None:
            loader.join()

    def release(self) -> None:
        """Give the loaded model's memory back (about 130 MB for the bundled one) until the next ``encode``
        loads it again: a large fit's SVM, the process's busiest moment, needs no encoder. onnxruntime's and
        tokenizers' code is paged out too (``memory.page_out_files``), read back from disk by the next load.
        A call encoding meanwhile keeps its own reference and finishes; a load under way is waited for, then
        dropped."""
        with self._lock:
            if self._loaded is None:
                return
            self._loaded = None
        page_out_files(_library_folders())
        log.info("sentence encoder released until it is needed again")

    def loaded(self) -> OnnxEncoder:
        """The loaded encoder, loading it now (or waiting for the background load)."""
        loaded = self._loaded
        if loaded is not None:
            return loaded
        model_id = self.model_id
        with self._lock:
            if self._loaded is None:
                if self._failure is not None:
                    raise ConfigError(self._failure)
                start = time.perf_counter()
                files, threads = self._files, self._threads
                self._loaded = self._checked(lambda: OnnxEncoder.load(files, threads=threads, model_id=model_id))
                log.info(
                    "sentence encoder %s (%d dimensions) loaded in %.2f s",
                    model_id,
                    self._loaded.dim,
                    time.perf_counter() - start,
                )
            return self._loaded

    def _load_quietly(self) -> None:
        with contextlib.suppress(ConfigError):  # remembered in _failure: the first real use raises it
            self.loaded()

    def _checked(self, step: Callable[[], _T]) -> _T:
        """Run a loading step (under the lock); a file problem becomes a ``ConfigError``, remembered."""
        if self._failure is not None:
            raise ConfigError(self._failure)
        try:
            return step()
        except ModelFileError as exc:
            self._failure = self._describe(str(exc))
            raise ConfigError(self._failure) from None


def _library_folders() -> list[str]:
    """The folders of the model packages' native libraries: each package's own, and the one beside it where
    a manylinux wheel keeps the libraries it bundles (``onnxruntime.libs``). Only packages already imported."""
    folders = []
    for name in _MODEL_PACKAGES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file is not None:
            package = os.path.dirname(file)
            folders += [package, package + ".libs"]
    return folders


def release_model(encoder: Encoder) -> None:
    """Release the model of a lazily loaded encoder, behind a cache or not; other encoders keep theirs."""
    inner = uncached(encoder)
    if isinstance(inner, LazyEncoder):
        inner.release()
