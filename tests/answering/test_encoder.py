"""The sentence encoder: reproduces all-MiniLM-L6-v2, is settable, and its disk cache saves work safely."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from encoders import CountingEncoder

import teachbot
from teachbot.answering.encoding import (
    MAX_TOKENS,
    CachedEncoder,
    OnnxEncoder,
    lazy_encoder,
    load_encoder,
    models,
    release_model,
)
from teachbot.answering.encoding.cache import CACHE_FILE
from teachbot.answering.encoding.encoder import ModelFileError
from teachbot.answering.encoding.models import bundled_files
from teachbot.config import load_settings
from teachbot.errors import ConfigError

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"
TEXTS = [
    "How do I reset my password?",
    "what's the weather like tomorrow",
    "",
    "   ",
    "!!!",
    "Wie spät ist es?",
    "Какая сегодня погода?",
    "a much longer question about when the tuesday meetup starts and whether I should bring anything along",
]


@pytest.fixture
def encoder(minilm: OnnxEncoder) -> OnnxEncoder:
    return minilm


def model_folder(tmp_path: Path) -> Path:
    """The bundled model's files copied into a folder of their own, as a community would give one."""
    files = bundled_files()
    folder = tmp_path / "my-model"
    folder.mkdir()
    shutil.copyfile(files.model, folder / "model.onnx")
    (folder / "tokenizer.json").write_bytes(files.tokenizer.read_bytes())
    return folder


def test_every_reference_sentence_is_reproduced(encoder: OnnxEncoder) -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = encoder.encode(reference["sentences"])
    cosines = (got * expected).sum(axis=1)
    low = {s: round(float(c), 4) for s, c in zip(reference["sentences"], cosines, strict=True) if c < 0.99}
    assert not low, f"cosine below 0.99: {low}"
    assert len(cosines) == 16


def test_vectors_are_float32_unit_rows(encoder: OnnxEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), encoder.dim) == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_meaning_counts_more_than_wording(encoder: OnnxEncoder) -> None:
    question, paraphrase, same_words, unrelated = encoder.encode(
        [
            "How do I reset my password?",
            "I forgot my login, how can I change it?",
            "How do I reset the router?",
            "What time is it?",
        ]
    )
    assert float(question @ paraphrase) > float(question @ same_words) > float(question @ unrelated)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("How do I reset my password?", True),
        ("whats the weathr tmrw", True),  # misspelt English is still English
        ("Wie wird das Wetter morgen?", True),
        ("¿Dónde está la estación de tren?", True),
        ("!!! 42", True),  # nothing to judge: counts as read
        ("", True),
        ("Какая погода будет завтра?", False),
        ("Πώς σε λένε;", False),
        ("你叫什么名字？", False),
        ("कल मौसम कैसा रहेगा?", False),
        ("word " * 400, True),  # longer than the model sees: judged on what it sees
    ],
)
def test_the_encoder_says_which_texts_it_can_read(encoder: OnnxEncoder, text: str, read: bool) -> None:
    assert encoder.reads(text) is read


def test_batches_and_single_texts_give_the_same_vectors(encoder: OnnxEncoder) -> None:
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    reversed_order = encoder.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(together, reversed_order, atol=1e-5)
    many = encoder.encode(TEXTS * 5)  # more than one internal batch
    np.testing.assert_allclose(many, np.vstack([together] * 5), atol=1e-5)
    long_ones = encoder.encode(["word " * 200] * 9 + ["short"])  # past the padded-token budget of a batch
    np.testing.assert_allclose(long_ones[:9], np.repeat(encoder.encode(["word " * 200]), 9, axis=0), atol=1e-5)


def test_long_texts_are_cut_at_the_token_limit(encoder: OnnxEncoder) -> None:
    full = "word " * (MAX_TOKENS - 2)  # with [CLS] and [SEP]: exactly the limit
    texts = [full + "pasta with tomato sauce", full, "word " * 100 + "pasta", "word " * 100]
    cut, kept, longer, shorter = encoder.encode(texts)
    np.testing.assert_allclose(cut, kept, atol=1e-5)  # what lies past the limit changes nothing
    assert float(longer @ shorter) < 0.999  # what lies within it does
    huge = encoder.encode(["pasta " * 200_000, "a\ud800b"])  # a megabyte, and a lone surrogate
    np.testing.assert_allclose(np.linalg.norm(huge, axis=1), 1.0, atol=1e-5)


def test_encoding_from_several_threads(encoder: OnnxEncoder) -> None:
    expected = encoder.encode(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: encoder.encode(TEXTS), range(4)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


@pytest.mark.slow
def test_onnxruntime_is_imported_only_when_a_model_loads() -> None:
    code = "import sys, teachbot.answering.encoding; print(sorted({'onnxruntime', 'tokenizers'} & set(sys.modules)))"
    source = str(Path(teachbot.__file__).resolve().parents[1])  # this checkout, wherever the test runs from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True)
    assert done.stdout.strip() == "[]"


def test_the_setting_defaults_to_the_bundled_model_and_can_be_off() -> None:
    assert load_settings().encoder == "minilm"
    assert load_settings(encoder=" MiniLM ").encoder == "minilm"
    assert load_settings(encoder="none").encoder == "none"
    assert load_encoder("none") is None
    assert load_encoder("None") is None


def test_the_bundled_model_id_names_the_model_and_its_file(encoder: OnnxEncoder) -> None:
    assert encoder.model_id.startswith("all-MiniLM-L6-v2-int8:8199be6f699a")


def test_a_folder_with_another_model_works(tmp_path: Path, encoder: OnnxEncoder) -> None:
    folder = model_folder(tmp_path)
    settings = load_settings(encoder=str(folder))
    assert settings.encoder == str(folder.resolve())
    custom = load_encoder(settings.encoder)
    assert custom is not None
    assert custom.model_id.startswith("my-model:8199be6f699a")
    assert custom.dim == 384
    np.testing.assert_allclose(custom.encode(TEXTS), encoder.encode(TEXTS), atol=1e-5)


def test_the_bundled_model_keeps_a_prepared_copy_that_gives_the_same_vectors(
    tmp_path: Path, encoder: OnnxEncoder
) -> None:
    stale = tmp_path / "encoder-all-MiniLM-L6-v2-int8_0123456789ab-onnxruntime-1.0.0.onnx"
    stale.write_bytes(b"a copy made by an earlier onnxruntime")
    (tmp_path / "vectors.sqlite3").write_bytes(b"")  # the cache's other files stay
    first = load_encoder("minilm", cache_dir=tmp_path)
    assert not stale.exists() and (tmp_path / "vectors.sqlite3").exists()
    (prepared,) = tmp_path.glob("encoder-*.onnx")
    assert "onnxruntime" in prepared.name and not list(tmp_path.glob(".*partial"))
    made = prepared.stat().st_mtime_ns
    again = load_encoder("minilm", cache_dir=tmp_path)
    assert prepared.stat().st_mtime_ns == made  # the second start read it, and did not make it again
    for loaded in (first, again):
        assert loaded is not None and loaded.model_id == encoder.model_id
        np.testing.assert_allclose(loaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-5)


def test_a_damaged_prepared_copy_is_dropped_and_the_model_still_loads(
    tmp_path: Path, encoder: OnnxEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    load_encoder("minilm", cache_dir=tmp_path)
    (prepared,) = tmp_path.glob("encoder-*.onnx")
    prepared.write_bytes(b"not an onnx graph")
    with caplog.at_level(logging.WARNING):
        loaded = load_encoder("minilm", cache_dir=tmp_path)
    assert loaded is not None
    np.testing.assert_allclose(loaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-5)
    assert not prepared.exists() and "unusable" in caplog.text  # read, found bad, removed: made again next start


def test_without_a_writable_cache_folder_the_model_loads_from_its_own_file(
    tmp_path: Path, encoder: OnnxEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        loaded = load_encoder("minilm", cache_dir=blocked)
    assert loaded is not None
    np.testing.assert_allclose(loaded.encode(TEXTS[:2]), encoder.encode(TEXTS[:2]), atol=1e-5)
    assert "cannot keep a prepared copy" in caplog.text and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_folder_model_gets_no_prepared_copy(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert load_encoder(str(model_folder(tmp_path)), cache_dir=cache) is not None
    assert not cache.exists()


@pytest.mark.parametrize(
    ("files", "words"),
    [
        (None, "is not minilm, none or a folder"),
        ((), "has no model.onnx and no tokenizer.json"),
        (("model.onnx",), "has no tokenizer.json"),
    ],
)
def test_a_bad_folder_is_refused_naming_the_setting(tmp_path: Path, files: tuple[str, ...] | None, words: str) -> None:
    folder = tmp_path / "model"
    if files is not None:
        folder.mkdir()
        for name in files:
            (folder / name).write_bytes(b"x")
    with pytest.raises(ConfigError, match="'encoder'") as caught:
        load_settings(encoder=str(folder))
    assert words in str(caught.value)
    with pytest.raises(ConfigError, match="'encoder'"):
        load_encoder(str(folder))


@pytest.mark.parametrize(
    ("broken", "words"),
    [("model.onnx", "not an ONNX model"), ("tokenizer.json", "not a tokenizer.json")],
)
def test_unusable_model_files_are_a_config_error(tmp_path: Path, broken: str, words: str) -> None:
    folder = model_folder(tmp_path)
    (folder / broken).write_bytes(b"this is not a model at all")
    with pytest.raises(ConfigError, match="'encoder'") as caught:
        load_encoder(str(load_settings(encoder=str(folder)).encoder))
    assert words in str(caught.value)


def test_the_bundled_model_file_must_have_its_pinned_hash(tmp_path: Path) -> None:
    files = bundled_files()
    with pytest.raises(ModelFileError, match="not the pinned"):
        OnnxEncoder.load(dataclasses.replace(files, model_sha256="0" * 64))


def test_a_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MODEL_DISTRIBUTION", "teachbot-no-such-model-package")
    with pytest.raises(ConfigError, match=r"'encoder'.*requirements/models\.txt.*encoder=none"):
        load_encoder("minilm")


def test_cache_hits_skip_the_model_and_survive_a_reopen(
    tmp_path: Path, counting: CountingEncoder, encoder: OnnxEncoder
) -> None:
    folder = tmp_path / "cache"
    with CachedEncoder(counting, folder) as cache:
        assert (cache.model_id, cache.dim) == (encoder.model_id, encoder.dim)
        first = cache.encode(TEXTS + TEXTS[:2])  # repeated texts are encoded once
        assert counting.encoded == len(TEXTS)
        np.testing.assert_allclose(first[: len(TEXTS)], encoder.encode(TEXTS), atol=1e-5)
        np.testing.assert_array_equal(first[len(TEXTS) :], first[:2])
        again = cache.encode(TEXTS)
        assert counting.encoded == len(TEXTS)
        np.testing.assert_array_equal(again, first[: len(TEXTS)])
        cache.encode([*TEXTS, "a new correction", "another one"])
        assert counting.encoded == len(TEXTS) + 2
    assert (folder / CACHE_FILE).is_file()

    with CachedEncoder(counting, folder) as reopened:
        np.testing.assert_array_equal(reopened.encode(TEXTS), again)
        assert reopened.encode([]).shape == (0, 384)
    assert counting.encoded == len(TEXTS) + 2


def test_vectors_of_another_model_are_not_reused(tmp_path: Path, counting: CountingEncoder) -> None:
    folder = tmp_path / "cache"
    with CachedEncoder(counting, folder) as cache:
        cache.encode(TEXTS)
    custom = load_encoder(str(model_folder(tmp_path)))
    assert custom is not None
    other = CountingEncoder(custom)
    with CachedEncoder(other, folder) as cache:
        cache.encode(TEXTS)
    assert other.encoded == len(TEXTS)


@pytest.mark.parametrize("damage", ["garbage", "overwritten pages"])
def test_a_corrupt_cache_file_is_rebuilt(
    tmp_path: Path, counting: CountingEncoder, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder, texts = tmp_path / "cache", [f"question number {n}" for n in range(40)]
    with CachedEncoder(counting, folder) as cache:
        expected = cache.encode(texts)
    path = folder / CACHE_FILE
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a database " * 1000)
    else:
        assert len(data) > 4 * 4096
        path.write_bytes(data[:4096] + b"\xff" * (len(data) - 4096))  # the header stays, the pages go

    counting.encoded = 0
    with caplog.at_level(logging.WARNING), CachedEncoder(counting, folder) as rebuilt:
        np.testing.assert_allclose(rebuilt.encode(texts), expected, atol=1e-5)
    assert counting.encoded == len(texts)
    assert "vector cache" in caplog.text

    counting.encoded = 0
    with CachedEncoder(counting, folder) as cache:
        cache.encode(texts)
    assert counting.encoded == 0


def test_the_cache_stays_within_its_size(tmp_path: Path, counting: CountingEncoder) -> None:
    folder = tmp_path / "cache"
    with CachedEncoder(counting, folder, max_bytes=20 * (384 * 4 + 96)) as cache:  # room for 20 vectors
        for start in range(0, 80, 10):
            cache.encode([f"text {n}" for n in range(start, start + 10)])
        db = sqlite3.connect(folder / CACHE_FILE)
        (rows,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        db.close()
        assert 10 <= rows <= 20
        counting.encoded = 0
        cache.encode([f"text {n}" for n in range(70, 80)])  # the newest are still there
        assert counting.encoded == 0


def test_cached_encoding_from_several_threads(tmp_path: Path, counting: CountingEncoder, encoder: OnnxEncoder) -> None:
    batches = [[f"thread text {n % 3} {k}" for k in range(6)] for n in range(8)]
    with CachedEncoder(counting, tmp_path / "cache") as cache, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(cache.encode, batches))
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_allclose(result, encoder.encode(batch), atol=1e-5)


def test_a_released_model_loads_again_when_next_needed(encoder: OnnxEncoder) -> None:
    lazy = lazy_encoder("minilm")
    assert lazy is not None
    first = lazy.encode(TEXTS)
    release_model(lazy)
    assert not lazy.is_loaded
    np.testing.assert_array_equal(lazy.encode(TEXTS), first)
    assert lazy.is_loaded
    np.testing.assert_allclose(first, encoder.encode(TEXTS), atol=1e-6)


def test_stored_vectors_need_no_model_but_new_or_damaged_ones_do(tmp_path: Path) -> None:
    lazy = lazy_encoder("minilm")
    assert lazy is not None
    with CachedEncoder(lazy, tmp_path / "cache") as cache:
        first = cache.encode(TEXTS)
        release_model(cache)  # through the cache, to the model behind it
        assert not lazy.is_loaded
        np.testing.assert_array_equal(cache.encode(TEXTS[::-1]), first[::-1])
        assert not lazy.is_loaded  # every text was stored: the model was not needed
        assert cache.encode([*TEXTS, "a new correction"]).shape == (len(TEXTS) + 1, 384)
        assert lazy.is_loaded

        release_model(cache)
        db = sqlite3.connect(cache.path)
        db.execute("UPDATE vectors SET vector = ?", (b"\x00" * 12,))  # every stored vector cut short
        db.commit()
        db.close()
        np.testing.assert_allclose(cache.encode(TEXTS), first, atol=1e-6)  # encoded again, not read as 3 floats
        assert lazy.is_loaded
