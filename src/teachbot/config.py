"""Settings: parsed once from the environment, ``.env`` and ``teachbot.toml``, then passed down.

Precedence, highest first: constructor arguments, ``TEACHBOT_*`` environment variables, ``.env``,
the TOML file (``teachbot.toml`` or the path in ``TEACHBOT_CONFIG``), defaults.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from teachbot.errors import ConfigError

CONFIG_ENV = "TEACHBOT_CONFIG"
DEFAULT_CONFIG_FILE = "teachbot.toml"

#: Values of the ``encoder`` setting besides a folder, and the files such a folder must hold.
ENCODER_BUNDLED = "minilm"
ENCODER_NONE = "none"
ENCODER_FILES = ("model.onnx", "tokenizer.json")


class Backend(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"
    HYBRID = "hybrid"


class SttEngine(StrEnum):
    SPHINX = "sphinx"
    WHISPER = "whisper"
    GOOGLE = "google"
    OPENAI = "openai"


class TtsEngine(StrEnum):
    ESPEAK = "espeak"
    FLITE = "flite"
    GTTS = "gtts"
    OPENAI = "openai"


class VoiceReplies(StrEnum):
    SAME_CHANNEL = "same_channel"
    ALWAYS = "always"
    NEVER = "never"


class TrainingRunner(StrEnum):
    LOCAL = "local"
    QUEUE = "queue"


class ActivationPolicy(StrEnum):
    IF_NOT_WORSE = "if_not_worse"
    ALWAYS = "always"
    NEVER = "never"


class Settings(BaseSettings):
    """Every setting teachbot reads. Field descriptions are the documentation (see ``teachbot config``)."""

    model_config = SettingsConfigDict(
        env_prefix="TEACHBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    # -- storage and logging
    data_dir: Path = Field(
        Path("teachbot-data"), description="Folder holding the database, models, datasets, exports and archives."
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite (WAL) in the data folder.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")
    scope: str = Field("global", description="Knowledge scope the console and CLI work in.")
    heartbeat_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How often a process records that it is alive (teachbot status); after three missed beats it "
        "counts as stopped and its training runs as interrupted.",
    )
    change_poll_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often a process reads what other processes changed, on SQLite (PostgreSQL notifies at "
        "once and checks every 5 s besides).",
    )
    change_retention_hours: float = Field(
        24.0,
        gt=0,
        description="How long the change log keeps a change; older ones are deleted once every live process has "
        "read them.",
    )

    # -- answering
    backend: Backend = Field(Backend.LOCAL, description="Model backend: local, openai or hybrid.")
    encoder: str = Field(
        ENCODER_BUNDLED,
        description="Sentence encoder for meaning: minilm (bundled all-MiniLM-L6-v2), none (word and character "
        "n-grams only), or a folder holding model.onnx and tokenizer.json of a sentence-transformers model.",
    )
    encoder_prepared_copy: bool = Field(
        True,
        description="Keep a copy of the bundled encoder prepared for onnxruntime in the data folder's cache/ (90 MB): "
        "each start then loads it faster and with 55 MB less at its peak.",
    )
    confidence_threshold: float = Field(
        0.35, ge=0.0, le=1.0, description="Below this confidence the local model gives the fallback answer."
    )
    fallback_answer: str = Field(
        "I don't know that yet.",
        description="What the bot says when it does not know (each door adds how to teach it).",
    )
    instruction_file: Path | None = Field(
        None, description="Markdown guide shown by !instruction (default: the bundled guide)."
    )
    command_prefix: str = Field("!", min_length=1, max_length=5, description="Prefix of text commands.")

    # -- training
    activation: ActivationPolicy = Field(
        ActivationPolicy.IF_NOT_WORSE, description="After training: if_not_worse, always or never activate."
    )
    holdout_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of examples held out to evaluate a new version."
    )
    starter_examples: bool = Field(
        True,
        description="Train every version with the built-in small talk (greetings, thanks, what teachbot is); "
        "false leaves only your own data.",
    )
    training_runner: TrainingRunner = Field(
        TrainingRunner.LOCAL,
        description="Where training, fine-tuning and !test runs happen: local (in the process that was asked) or "
        "queue (a `teachbot worker` takes them from a job queue in PostgreSQL; needs teachbot[postgres]).",
    )
    max_upload_bytes: int = Field(
        20_000_000, gt=0, description="Largest dataset or audio attachment accepted, in bytes."
    )
    max_send_bytes: int = Field(8_000_000, gt=0, description="Largest file the bot sends, in bytes.")

    # -- discord
    discord_token: SecretStr | None = Field(
        None, description="Discord bot token; without one, `teachbot run` chats in the terminal."
    )
    discord_api_base: str = Field(
        "https://discord.com/api/v10", description="Discord REST base URL (for Discord-compatible servers and tests)."
    )
    discord_gateway_url: str = Field("wss://gateway.discord.gg/", description="Discord gateway URL.")
    discord_connect_attempts: int = Field(
        5, ge=1, le=100, description="Tries to reach Discord at start (backoff 1, 2, 4… s, at most 60 s)."
    )
    shard_count: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Discord shards of the whole deployment; empty: no sharding (one process holds every guild).",
    )
    shard_ids: list[int] = Field(
        default_factory=list,
        description="The shards this process serves (0 … shard_count-1); empty: all of them. The process "
        "holding shard 0 syncs the slash commands.",
    )
    chat_channels: list[int] = Field(
        default_factory=list, description="Channel ids where the bot answers every message."
    )
    owner_ids: list[int] = Field(
        default_factory=list, description="User ids with every privilege (the application owner is added)."
    )
    trainer_roles: list[str] = Field(
        default_factory=lambda: ["trainer"],
        description="Role ids or names allowed to train, test, archive, select datasets and get files.",
    )
    trusted_roles: list[str] = Field(
        default_factory=list, description="Role ids or names whose corrections apply at once without review."
    )
    allowed_users: list[int] = Field(default_factory=list, description="If set, only these users may use the bot.")
    blocked_users: list[int] = Field(default_factory=list, description="Users the bot ignores.")
    allowed_roles: list[str] = Field(
        default_factory=list, description="If set, only members with one of these roles may use the bot."
    )
    blocked_roles: list[str] = Field(default_factory=list, description="Members with one of these roles are ignored.")
    allowed_channels: list[int] = Field(
        default_factory=list, description="If set, the bot works only in these channels."
    )
    blocked_channels: list[int] = Field(default_factory=list, description="Channels the bot ignores.")
    allow_dms: bool = Field(True, description="Answer direct messages.")
    chat_cooldown_seconds: float = Field(1.0, ge=0, description="Per-user pause between chat answers.")
    heavy_cooldown_seconds: float = Field(
        30.0, ge=0, description="Per-user pause between heavy commands (train, test, archive)."
    )

    # -- LLM (openai-compatible)
    llm_base_url: str = Field("https://api.openai.com/v1", description="Base URL of an OpenAI-compatible server.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible server.")
    llm_model: str = Field("gpt-4o-mini", description="Chat model name.")
    llm_system_prompt: str = Field(
        "You are teachbot, a helpful assistant that learns from its community.", description="System instruction."
    )
    llm_system_prompt_file: Path | None = Field(
        None, description="File holding the system instruction (overrides llm_system_prompt)."
    )
    llm_temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(512, gt=0, description="Largest answer, in tokens.")
    llm_context_tokens: int = Field(4000, gt=0, description="Token budget for the prompt (memory, examples, files).")
    llm_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest wait for one LLM answer, in seconds, retries included (a streamed answer must "
        "finish within it too).",
    )
    llm_max_retries: int = Field(2, ge=0, description="Retries on 429 and 5xx, with backoff.")
    llm_vision_models: list[str] = Field(default_factory=list, description="Models that accept image inputs.")
    llm_finetune_poll_seconds: float = Field(
        15.0, gt=0, description="Seconds between status polls of a fine-tuning job."
    )
    user_token_quota: int = Field(0, ge=0, description="Tokens one user may spend per day (0: unlimited).")
    guild_token_quota: int = Field(0, ge=0, description="Tokens one server may spend per day (0: unlimited).")

    # -- speech
    stt_engine: SttEngine | None = Field(
        None, description="Speech-to-text engine; empty: whisper when faster-whisper is installed, else sphinx."
    )
    tts_engine: TtsEngine = Field(TtsEngine.ESPEAK, description="Text-to-speech engine.")
    whisper_model: str = Field(
        "", description="faster-whisper model: a local folder or a model name; empty: the bundled tiny.en."
    )
    speech_language: str = Field("en", description="Language of speech in (BCP-47 / ISO code).")
    tts_language: str = Field("en", description="Language of speech out.")
    tts_voice: str = Field("", description="Voice name for the TTS engine (engine default if empty).")
    speech_base_url: str = Field(
        "", description="OpenAI-compatible server for the openai speech engines (empty: llm_base_url)."
    )
    speech_api_key: SecretStr | None = Field(None, description="Key for speech_base_url (empty: llm_api_key).")
    stt_model: str = Field("whisper-1", description="Model of the openai speech-to-text engine.")
    tts_model: str = Field("tts-1", description="Model of the openai text-to-speech engine.")
    max_audio_seconds: float = Field(120.0, gt=0, description="Longest audio clip transcribed.")
    voice_replies: VoiceReplies = Field(
        VoiceReplies.SAME_CHANNEL, description="Speak answers in voice: same_channel, always or never."
    )
    voice_idle_seconds: float = Field(300.0, gt=0, description="Leave a voice channel after this long idle.")
    voice_wake_words: list[str] = Field(
        default_factory=list,
        description="Words that address the bot at the start of something said in voice, besides its name.",
    )
    voice_answer_everyone: bool = Field(
        False, description="Answer everything said in voice, not only what addresses the bot (with several people)."
    )
    voice_listen_roles: list[str] = Field(
        default_factory=list, description="Role ids or names that may use listen (empty: every member)."
    )
    voice_listen_channels: list[int] = Field(
        default_factory=list, description="Voice channel ids where the bot may listen (empty: any)."
    )
    voice_opt_out_roles: list[str] = Field(
        default_factory=list, description="Members with one of these roles are never listened to."
    )
    voice_silence_ms: int = Field(
        600, ge=200, le=3000, description="Quiet that ends an utterance in voice, in milliseconds."
    )
    voice_max_utterance_seconds: float = Field(
        20.0, gt=1, le=120, description="A speaker who never pauses is cut after this many seconds."
    )
    voice_store_audio: bool = Field(
        False, description="Keep each heard utterance as a WAV file under the data folder (off: never stored)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif CONFIG_ENV in os.environ:
            raise ConfigError(f"{CONFIG_ENV}: no such file: {toml_path}")
        return tuple(sources)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("scope")
    @classmethod
    def _scope_name(cls, value: str) -> str:
        if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("must be 1-64 letters, digits, '-' or '_'")
        return value

    @field_validator("encoder")
    @classmethod
    def _encoder_choice(cls, value: str) -> str:
        keyword = value.strip().lower()
        if keyword in {ENCODER_BUNDLED, ENCODER_NONE}:
            return keyword
        folder = Path(value.strip()).expanduser()
        if not value.strip() or not folder.is_dir():
            files = " and ".join(ENCODER_FILES)
            raise ValueError(f"{value!r} is not {ENCODER_BUNDLED}, {ENCODER_NONE} or a folder holding {files}")
        missing = [name for name in ENCODER_FILES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"the folder {value!r} has no {' and no '.join(missing)}")
        return str(folder.resolve())

    @field_validator("shard_ids")
    @classmethod
    def _shards_fit(cls, value: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("shard_count")
        if value and count is None:
            raise ValueError("needs shard_count (the deployment's number of shards) too")
        outside = [i for i in value if count is not None and not 0 <= i < count]
        if outside and count is not None:
            raise ValueError(f"{outside} outside 0…{count - 1} (shard_count is {count})")
        if len(set(value)) != len(value):
            raise ValueError("lists a shard twice")
        return sorted(value)

    @property
    def shard_label(self) -> str:
        """The shards this process serves, as ``teachbot status`` shows them ("0,1 of 4"; "all" unsharded)."""
        if self.shard_count is None:
            return "all"
        served = self.shard_ids or list(range(self.shard_count))
        return f"{','.join(str(i) for i in served)} of {self.shard_count}"

    # -- derived paths (one place decides the layout of the data folder)
    @property
    def database_path(self) -> Path:
        return self.data_dir / "teachbot.sqlite3"

    @property
    def cache_dir(self) -> Path:
        """Files teachbot can rebuild (encoded vectors, the encoder's prepared copy); safe to delete."""
        return self.data_dir / "cache"

    @property
    def encoder_prepared_in(self) -> Path | None:
        """Where the bundled encoder's prepared copy is kept (None: nowhere, it is rebuilt in memory each start)."""
        return self.cache_dir if self.encoder_prepared_copy else None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def shown_database_url(self) -> str:
        """The database URL with its password masked, to show people."""
        return _mask_url_password(self.effective_database_url)

    def secret_values(self) -> list[str]:
        """The values of every secret setting, for the log filter that masks them."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value()]

    def public_view(self) -> dict[str, Any]:
        """Every setting with secrets masked, for ``teachbot config`` and logs."""
        view: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif name == "database_url" and value:
                value = _mask_url_password(value)
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, Path):
                value = str(value)
            view[name] = value
        return view


def _mask_url_password(url: str) -> str:
    """Hide the password part of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "********"


def load_settings(**overrides: Any) -> Settings:
    """Build ``Settings``; a bad value becomes one ``ConfigError`` line naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        # a ValueError raised by one of our checks reads as its own sentence, without pydantic's "Value error, "
        error = first.get("ctx", {}).get("error") if first["type"] == "value_error" else None
        problem = str(error) if isinstance(error, ValueError) and str(error) else first["msg"]
        raise ConfigError(f"setting '{name}' (TEACHBOT_{name.upper()}): {problem}") from None
    except (OSError, ValueError) as exc:  # unreadable TOML or .env
        raise ConfigError(f"cannot read settings: {exc.__class__.__name__}: {exc}") from None
