"""A sentence-transformers model run on onnxruntime: texts in, unit vectors of meaning out.

onnxruntime and tokenizers are imported when a model is loaded, not when this module is, so commands
that never encode start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from teachbot.answering.encoding.recent import RecentVectors
from teachbot.memory import release_free_memory

if TYPE_CHECKING:
    from onnxruntime import InferenceSession, SessionOptions
    from tokenizers import Encoding, Tokenizer

log = logging.getLogger(__name__)

#: Longest input, in tokens (special tokens included); longer texts are cut, as the model was trained.
MAX_TOKENS = 128
#: Texts are cut to this many characters before tokenising: far more than 128 tokens of any real text,
#: and it keeps a pasted megabyte from costing seconds of tokenising.
MAX_CHARS = 16_384
BATCH_SIZE = 32
#: Padded tokens per batch at most: onnxruntime's peak memory grows faster than the batch (measured on
#: all-MiniLM-L6-v2, 2 threads: 8 x 128 tokens +0.06 GB, 16 x 128 +0.26 GB, 32 x 128 +0.58 GB), speed does not.
BATCH_TOKENS = 1024
#: Calls of at most this many texts use and feed the memory of recent inputs (``RecentVectors``): questions,
#: not training runs, which would push them all out and whose batches stay as they were.
REMEMBER_UP_TO = 8
MAX_THREADS = 2  # onnxruntime threads per encoder: the bot shares small machines with other work
#: Output names, best first: one vector per token (mean-pooled here) or one per text (used as it is).
_OUTPUTS = ("last_hidden_state", "token_embeddings", "sentence_embedding")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_FED = ("input_ids", "attention_mask", "token_type_ids")
_PREPARED_PREFIX = "encoder-"  # the prepared copies' names: encoder-<model id>-onnxruntime-<version>.onnx
_UNKNOWN_TOKENS = frozenset({"[UNK]", "<unk>", "<UNK>"})


class Encoder(Protocol):
    """Turns texts into L2-normalised vectors: the dot product of two is the cosine of their meanings."""

    @property
    def model_id(self) -> str:
        """Names the model and its files (a hash prefix): vectors of different ids never mix."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), each row of length 1; safe to call from any thread."""
        ...

    def reads(self, text: str) -> bool:
        """Whether the model's vocabulary covers ``text`` well enough for its vector to mean something."""
        ...


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where a model's files are, the sha256 its ONNX file must have (None: any), and a folder where a prepared
    copy of the model may be kept (None: none; see ``_session``)."""

    name: str
    model: Path
    tokenizer: Traversable  # a Path, or a file inside the teachbot package
    model_sha256: str | None = None
    prepared_in: Path | None = None


class ModelFileError(Exception):
    """The model files cannot be used; the message says which file and why (no exception text inside)."""


class TurnLock:
    """A lock taken in the order it was asked for. A plain lock lets the thread that just released it take it
    again at once, so a question waited behind every batch of a long run (5 s seen); in turn it waits for one."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._turns.wait()

    def __exit__(self, *exc_info: object) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


class OnnxEncoder:
    """Tokenise (truncating at MAX_TOKENS), run the ONNX model in length-sorted batches padded per batch,
    mean-pool over the attention mask and L2-normalise. One batch runs at a time (a lock), so worker
    threads never compete for the same cores, and a question asked during a long run waits for one batch.
    Inputs encoded recently (``recent``) and repeats within one call are not run again."""

    def __init__(
        self,
        *,
        model_id: str,
        session: InferenceSession,
        tokenizer: Tokenizer,
        output: str,
        dim: int,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._model_id = model_id
        self._session = session
        self._tokenizer = tokenizer
        self._output = output
        self._dim = dim
        self.batch_size = batch_size
        self._inputs = {i.name: _INT_TYPES.get(i.type, np.int64) for i in session.get_inputs()}
        self._lock = TurnLock()
        self.recent = RecentVectors()

    @classmethod
    def load(
        cls, files: ModelFiles, *, threads: int = 2, batch_size: int = BATCH_SIZE, model_id: str | None = None
    ) -> OnnxEncoder:
        """Read and check the files, start an onnxruntime session and encode one probe text.

        ``model_id`` is what ``identify(files)`` returned, when the caller already checked the files."""
        tokenizer_data = _read(files.tokenizer)
        model_id = model_id or _identity(files, tokenizer_data)
        tokenizer = _load_tokenizer(tokenizer_data, files.tokenizer)
        prepared = _prepared_path(files.prepared_in, model_id) if files.prepared_in is not None else None
        session = _session(files.model, threads, prepared)
        names = {i.name for i in session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= names <= set(_FED):
            raise ModelFileError(f"{files.model} takes {sorted(names)}, not input_ids and attention_mask")
        output = _choose_output(session)
        encoder = cls(
            model_id=model_id,
            session=session,
            tokenizer=tokenizer,
            output=output,
            dim=0,
            batch_size=batch_size,
        )
        try:
            hello = np.array(tokenizer.encode("hello").ids, dtype=np.int32)
            probe = encoder._run([hello])  # finds the width and warms the session up
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            log.debug("the model fails on a probe text", exc_info=True)
            raise ModelFileError(f"{files.model} fails on a probe text") from exc
        if probe.ndim != 2 or probe.shape[1] < 2 or not np.isfinite(probe).all():
            raise ModelFileError(f"{files.model} does not give one finite vector per text")
        encoder._dim = int(probe.shape[1])
        release_free_memory()  # onnxruntime's graph rewriting leaves about a third of the load's memory free
        return encoder

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """For a few texts (questions), inputs seen recently (the same token ids) come from memory and each
        other distinct input is run once; a longer call (training) runs every text, as it always did."""
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not len(texts):
            return out
        # token ids only: a tokenizer's Encoding also holds offsets, tokens and masks (CLINC150's 15,000 texts:
        # 30 MB, held until the last batch ran, the peak of a training run's encoding)
        inputs = [np.array(self._tokenize(text).ids, dtype=np.int32) for text in texts]
        if len(texts) > REMEMBER_UP_TO:  # a training run: every row as given, in the same batches as always
            order = sorted(range(len(texts)), key=lambda n: len(inputs[n]))
            for rows in self._batches(order, [len(ids) for ids in inputs]):
                with self._lock:
                    out[rows] = self._run([inputs[n] for n in rows])
            return out
        keys = [tuple(ids.tolist()) for ids in inputs]
        known = self.recent.get_many(keys)
        first: dict[tuple[int, ...], int] = {}  # each input still to run, by the first row holding it
        for row, key in enumerate(keys):
            if key in known:
                out[row] = known[key]
            else:
                first.setdefault(key, row)
        order = sorted(first.values(), key=lambda n: len(keys[n]))
        for rows in self._batches(order, [len(key) for key in keys]):
            with self._lock:  # per batch: a question waits for one batch of a long run, not for all of it
                out[rows] = self._run([inputs[n] for n in rows])
        if len(first) < len(texts):
            for row, key in enumerate(keys):
                if key not in known and first[key] != row:
                    out[row] = out[first[key]]
        self.recent.put_many((key, out[row]) for key, row in first.items())
        return out

    def reads(self, text: str) -> bool:
        """At least half the letters of ``text`` fall in tokens of two or more characters.

        A script the model never learned breaks into single characters or unknown tokens, and then every
        vector looks alike: unrelated Greek, Arabic or Hindi questions reach cosines of 0.6 to 0.85 with
        all-MiniLM-L6-v2, so no cut-off of meaning can tell them apart. Text without letters counts as read.
        """
        encoding = self._tokenize(text)
        seen = max((end for _, end in encoding.offsets), default=0)  # the model sees at most MAX_TOKENS
        letters = sum(ch.isalnum() for ch in text[:seen])
        if not letters:
            return True
        covered = sum(
            sum(ch.isalnum() for ch in text[start:end])
            for token, (start, end) in zip(encoding.tokens, encoding.offsets, strict=True)
            if end - start >= 2 and token not in _UNKNOWN_TOKENS
        )
        return covered * 2 >= letters

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive rows of ``order`` (shortest first), each batch within batch_size and BATCH_TOKENS."""
        batches: list[list[int]] = [[]]
        for n in order:
            rows = batches[-1]
            if rows and (len(rows) >= self.batch_size or (len(rows) + 1) * lengths[n] > BATCH_TOKENS):
                batches.append(rows := [])
            rows.append(n)
        return batches if batches[0] else []

    def _tokenize(self, text: str) -> Encoding:
        text = text[:MAX_CHARS]
        try:
            return self._tokenizer.encode(text)
        except TypeError:  # lone surrogates (from broken JSON or clients) are not valid UTF-8
            return self._tokenizer.encode(text.encode("utf-8", "replace").decode("utf-8"))

    def _run(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """One padded batch through the model: unit vectors, one row per text's token ids."""
        width = max(len(tokens) for tokens in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {name: given[name].astype(dtype, copy=False) for name, dtype in self._inputs.items() if name in given}
        (result,) = self._session.run([self._output], feeds)
        vectors = np.asarray(result, dtype=np.float32)
        if vectors.ndim == 3:
            weights = mask[:, :, None].astype(np.float32)
            vectors = (vectors * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def identify(files: ModelFiles) -> str:
    """The model id of these files (name, model hash, tokenizer hash), checking a pinned hash; no onnxruntime,
    so a stored model version can be matched with the encoder in a few tens of milliseconds."""
    return _identity(files, _read(files.tokenizer))


def _identity(files: ModelFiles, tokenizer_data: bytes) -> str:
    digest = _sha256(files.model)
    if files.model_sha256 is not None and digest != files.model_sha256:
        raise ModelFileError(f"{files.model} has sha256 {digest[:12]}…, not the pinned {files.model_sha256[:12]}…")
    return f"{files.name}:{digest[:12]}-{hashlib.sha256(tokenizer_data).hexdigest()[:8]}"


def _sha256(path: Path) -> str:
    """The file's hash, read in chunks (the model is loaded from its path: a bytes copy would stay in memory)."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({exc.strerror or exc.__class__.__name__})") from exc


def _read(path: Traversable) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({exc.strerror or exc.__class__.__name__})") from exc


def _load_tokenizer(data: bytes, path: Traversable) -> Tokenizer:
    """The tokenizer with truncation at MAX_TOKENS and no padding (batches are padded as they are built)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_buffer(data)
    except Exception as exc:  # tokenizers raises a bare Exception for unreadable or malformed files
        log.debug("cannot load tokenizer %s", path, exc_info=True)
        raise ModelFileError(f"{path} is not a tokenizer.json the tokenizers library can read") from exc
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


def _session(model: Path, threads: int, prepared: Path | None = None) -> InferenceSession:
    """A CPU session on at most ``threads`` cores (``_options``), from the ``prepared`` copy of ``model`` when
    one is given: made on first use, kept for the next start.

    The bundled model keeps its weights in int8, each multiplied by its scale; onnxruntime turns them into
    float32 every time it starts a session, holding both meanwhile. The prepared copy is the graph after that
    step (and onnxruntime's portable fusions): 90 MB on disk instead of 23, but a session starts in 0.25 s
    instead of 0.31-0.47 and peaks 55 MB lower, with the same vectors (measured, 3 alternating runs)."""
    if prepared is not None:
        if not prepared.is_file():
            _prepare(model, prepared)
        if prepared.is_file():
            try:
                return _new_session(prepared, threads)
            except ModelFileError:
                log.warning("the prepared copy of the sentence encoder %s is unusable: made again next start", prepared)
                with contextlib.suppress(OSError):  # a read-only folder: the model's own file serves each start
                    prepared.unlink(missing_ok=True)
    return _new_session(model, threads)


def _prepared_path(folder: Path, model_id: str) -> Path:
    """Where the prepared copy of the model ``model_id`` lives: per model and onnxruntime version, as the copy
    holds onnxruntime's own rewriting of the graph."""
    import onnxruntime as ort

    name = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{model_id}-onnxruntime-{ort.__version__}")
    return folder / f"{_PREPARED_PREFIX}{name}.onnx"


def _prepare(model: Path, prepared: Path) -> None:
    """Write ``model`` as onnxruntime optimises it (portable rewrites only), atomically, and remove the copies
    an earlier model or onnxruntime left (90 MB each); on failure (a full disk, a read-only folder) leave nothing
    behind: the session starts from the model itself."""
    import onnxruntime as ort

    options = _options(1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # no hardware-specific layouts
    partial = prepared.with_name(f".{prepared.name}.{os.getpid()}.partial")
    options.optimized_model_filepath = str(partial)
    try:
        prepared.parent.mkdir(parents=True, exist_ok=True)
        ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        os.replace(partial, prepared)
    except Exception as exc:  # onnxruntime's errors derive from Exception only; OSError from the folder
        log.warning(
            "cannot keep a prepared copy of the sentence encoder in %s (%s)", prepared.parent, type(exc).__name__
        )
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return
    for stale in prepared.parent.glob(f"{_PREPARED_PREFIX}*.onnx"):  # of an earlier model or onnxruntime
        if stale != prepared:
            with contextlib.suppress(OSError):  # the new copy is kept all the same
                stale.unlink(missing_ok=True)


def _new_session(model: Path, threads: int) -> InferenceSession:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(model), sess_options=_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        log.debug("onnxruntime cannot load the model", exc_info=True)
        raise ModelFileError(f"{model} is not an ONNX model onnxruntime can run") from exc


def _options(threads: int) -> SessionOptions:
    """At most ``threads`` cores whose idle threads sleep instead of spinning, memory given back after each run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(threads, MAX_THREADS, os.cpu_count() or 1))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False  # the arena keeps a long batch's peak (~800 MB at 64 x 128 tokens) for good
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are about its own graph rewrites
    return options


def _choose_output(session: InferenceSession) -> str:
    """The output holding the vectors: a known name, else the first one."""
    names = [o.name for o in session.get_outputs()]
    return next((name for name in _OUTPUTS if name in names), names[0])
