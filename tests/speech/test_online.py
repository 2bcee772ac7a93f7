"""Online engines against small stand-in servers on loopback, through the real client libraries."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from teachbot.config import load_settings
from teachbot.errors import UserError
from teachbot.speech.audio import decode_to_pcm16k, pcm_duration
from teachbot.speech.factory import build_stt, build_tts, hear
from teachbot.speech.stt_online import GoogleEngine
from teachbot.speech.tts_local import EspeakEngine
from teachbot.speech.tts_online import OpenAITtsEngine

Handler = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, str, bytes]]


class Recorder:
    """What the stand-in server saw, for the test to check."""

    def __init__(self) -> None:
        self.requests: list[dict] = []


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    """Start a loopback HTTP server answering with ``handler``; yields a function returning its base URL."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(handler: Handler) -> str:
        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, content_type, payload = handler(self, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _flac_seconds(body: bytes) -> float:
    out = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "16000", "pipe:1"],
        input=body, capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return pcm_duration(out.stdout)


def test_google_engine_speaks_the_web_speech_protocol(serve, hello_message: bytes, tmp_path: Path) -> None:
    seen = Recorder()

    def google(request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str, bytes]:
        query = parse_qs(urlsplit(request.path).query)
        seen.requests.append(
            {"lang": query["lang"][0], "type": request.headers["Content-Type"], "seconds": _flac_seconds(body)}
        )
        lines = [
            {"result": []},
            {"result": [{"alternative": [{"transcript": "hello world one two three", "confidence": 0.91}],
                         "final": True}], "result_index": 0},
        ]  # fmt: skip
        return 200, "application/json", "\n".join(json.dumps(line) for line in lines).encode()

    base = serve(google)
    settings = load_settings(data_dir=tmp_path, speech_language="en-US")
    engine = GoogleEngine(endpoint=f"{base}/speech-api/v2/recognize")
    transcript = hear(hello_message, engine, settings)
    assert (transcript.text, transcript.confidence, transcript.engine) == ("hello world one two three", 0.91, "google")
    [request] = seen.requests
    assert request["lang"] == "en-US"
    assert request["type"] == "audio/x-flac; rate=16000"
    assert request["seconds"] == pytest.approx(pcm_duration(decode_to_pcm16k(hello_message)), abs=0.05)


def test_google_engine_failures_are_user_errors(serve, hello_message: bytes) -> None:
    base = serve(lambda request, body: (503, "text/plain", b"busy"))
    engine = GoogleEngine(endpoint=f"{base}/speech-api/v2/recognize")
    with pytest.raises(UserError, match="didn't answer"):
        engine.transcribe(decode_to_pcm16k(hello_message), "en")
    nothing = serve(lambda request, body: (200, "application/json", b'{"result":[]}\n'))
    assert GoogleEngine(endpoint=nothing).transcribe(decode_to_pcm16k(hello_message), "en").is_empty


def _openai_standin(seen: Recorder) -> Handler:
    def handle(request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str, bytes]:
        auth = request.headers.get("Authorization")
        if request.path == "/v1/audio/transcriptions":
            form = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            fields = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
            audio = fields["file"].get_payload(decode=True)
            seen.requests.append({
                "path": request.path, "auth": auth, "model": fields["model"].get_content().strip(),
                "language": fields["language"].get_content().strip(), "riff": audio[:4],
                "seconds": pcm_duration(decode_to_pcm16k(audio)),
            })  # fmt: skip
            return 200, "application/json", json.dumps({"text": " hello world "}).encode()
        if request.path == "/v1/audio/speech":
            params = json.loads(body)
            seen.requests.append({"path": request.path, "auth": auth, **params})
            from teachbot.speech.factory import speech_file_bytes

            speech = EspeakEngine().synthesize(params["input"], "en")
            return 200, "audio/wav", speech_file_bytes(speech, ".wav")
        return 404, "application/json", b'{"error": {"message": "not found"}}'

    return handle


def test_openai_transcription_through_the_sdk(serve, hello_message: bytes, tmp_path: Path) -> None:
    seen = Recorder()
    base = serve(_openai_standin(seen))
    settings = load_settings(
        data_dir=tmp_path,
        stt_engine="openai",
        llm_base_url=f"{base}/v1",
        llm_api_key="test-key",
        speech_language="en-GB",
    )
    transcript = hear(hello_message, build_stt(settings), settings)
    assert (transcript.text, transcript.engine) == ("hello world", "openai")
    [request] = seen.requests
    assert request["auth"] == "Bearer test-key"
    assert (request["model"], request["language"], request["riff"]) == ("whisper-1", "en", b"RIFF")
    assert request["seconds"] == pytest.approx(pcm_duration(decode_to_pcm16k(hello_message)), abs=0.01)


def test_openai_speech_through_the_sdk(serve, tmp_path: Path) -> None:
    seen = Recorder()
    base = serve(_openai_standin(seen))
    settings = load_settings(data_dir=tmp_path, tts_engine="openai", llm_base_url=f"{base}/v1", tts_voice="nova")
    tts = build_tts(settings)
    speech = tts.synthesize("Hello from the stand-in.", settings.tts_language, settings.tts_voice)
    assert speech.engine == "openai" and speech.sample_rate == 22050 and speech.seconds > 0.5
    [request] = seen.requests
    assert (request["voice"], request["model"], request["response_format"]) == ("nova", "tts-1", "wav")
    assert request["input"] == "Hello from the stand-in."


def test_speech_server_and_models_have_their_own_settings(serve, hello_message: bytes, tmp_path: Path) -> None:
    seen = Recorder()
    base = serve(_openai_standin(seen))
    settings = load_settings(
        data_dir=tmp_path,
        stt_engine="openai",
        tts_engine="openai",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_api_key="llm-key",
        speech_base_url=f"{base}/v1",
        speech_api_key="speech-key",
        stt_model="my-stt",
        tts_model="my-tts",
    )
    hear(hello_message, build_stt(settings), settings)
    build_tts(settings).synthesize("Hi.", "en", "")
    transcription, speech = seen.requests
    assert (transcription["model"], transcription["auth"]) == ("my-stt", "Bearer speech-key")
    assert (speech["model"], speech["auth"]) == ("my-tts", "Bearer speech-key")


def test_openai_errors_are_user_errors(serve, hello_message: bytes) -> None:
    base = serve(lambda request, body: (400, "application/json", b'{"error": {"message": "bad"}}'))
    with pytest.raises(UserError, match="didn't answer"):
        OpenAITtsEngine(base_url=f"{base}/v1", api_key=None).synthesize("hi", "en")
    settings = load_settings(stt_engine="openai", llm_base_url=f"{base}/v1")
    with pytest.raises(UserError, match="didn't answer"):
        build_stt(settings).transcribe(decode_to_pcm16k(hello_message), "en")


def test_gtts_is_an_optional_extra(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("gtts") is not None:
        pytest.skip("gTTS is installed")
    from teachbot.errors import MissingExtra

    with pytest.raises(MissingExtra, match=r"teachbot\[online\]"):
        build_tts(load_settings(data_dir=tmp_path, tts_engine="gtts"))
