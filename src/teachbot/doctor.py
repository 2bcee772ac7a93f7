"""``teachbot doctor``: check the setup, one line per check, each problem with what to do about it.

Checks: Python, where the settings come from, the data folder (writable, free space), the database,
the sentence encoder, the system programs voice needs, and, when configured, the Discord token with
its Message Content intent and the LLM server with its model. Nothing is changed: a missing SQLite
database or data folder is reported as created at first start, not created. Secrets are never shown.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from teachbot.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, Backend, Settings, TtsEngine
from teachbot.errors import TeachbotError

__all__ = ["Check", "Status", "run_checks"]

MIN_PYTHON = (3, 11)
LOW_SPACE = 100 * 1024**2  # below this free space the data folder is a problem (training writes models)
SOME_SPACE = 1024**3  # below this, a warning
HTTP_SECONDS = 15.0
DB_SECONDS = 20.0
MESSAGE_CONTENT = (1 << 18) | (1 << 19)  # application flags GATEWAY_MESSAGE_CONTENT and ..._LIMITED
INTENT_FIX = (
    "turn it on: Discord developer portal → your application → Bot → Privileged Gateway Intents → "
    "Message Content Intent"
)


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"  # an optional part is missing; teachbot runs without it
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and what to do when it did not go well."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status.value:<8} {self.name}: {self.detail}" + (f" → {self.fix}" if self.fix else "")


async def run_checks(settings: Settings) -> list[Check]:
    """Every check that applies to ``settings``, in the order a person would fix them."""
    checks = [check_python(), check_settings_file(), check_data_folder(settings.data_dir)]
    checks.append(await check_database(settings))
    checks.append(await check_encoder(settings.encoder))
    checks.append(check_voice(settings.tts_engine))
    if settings.discord_token is not None and settings.discord_token.get_secret_value():
        checks.extend(await check_discord(settings.discord_api_base, settings.discord_token.get_secret_value()))
    if settings.backend is not Backend.LOCAL:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else ""
        checks.append(await check_llm(settings.llm_base_url, key, settings.llm_model))
    return checks


def check_python() -> Check:
    version = ".".join(str(part) for part in sys.version_info[:3])
    if sys.version_info[:2] >= MIN_PYTHON:
        return Check("Python", Status.OK, version)
    needed = ".".join(map(str, MIN_PYTHON))
    return Check("Python", Status.PROBLEM, f"{version} is too old", f"install Python {needed} or newer")


def check_settings_file() -> Check:
    """Where settings come from, so a user knows which file to edit."""
    named = os.environ.get(CONFIG_ENV)
    path = Path(named or DEFAULT_CONFIG_FILE)
    if path.is_file():
        return Check("settings", Status.OK, f"read from {path.resolve()} (environment variables override it)")
    if named:
        return Check("settings", Status.PROBLEM, f"{CONFIG_ENV} names {path}, which is not a file", "fix the path")
    return Check(
        "settings", Status.OK, f"no {DEFAULT_CONFIG_FILE} here: defaults and TEACHBOT_* variables "
        "(`teachbot init` writes a project with one)",
    )  # fmt: skip


def check_data_folder(folder: Path) -> Check:
    """The data folder can be written (or created) and has room."""
    name = "data folder"
    target = folder.expanduser().resolve()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check(name, Status.PROBLEM, f"{existing} is a file, not a folder", "set data_dir to a folder")
    if existing == target:
        try:
            with tempfile.TemporaryFile(dir=target):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return Check(name, Status.PROBLEM, f"{target} cannot be written ({reason})", _permission_fix(target))
        state = str(target)
    elif os.access(existing, os.W_OK | os.X_OK):
        state = f"{target} (created at first start)"
    else:
        return Check(name, Status.PROBLEM, f"{target} cannot be created in {existing}", _permission_fix(existing))
    free = shutil.disk_usage(existing).free
    if free < LOW_SPACE:
        return Check(name, Status.PROBLEM, f"{state}: only {_size(free)} free", "free some disk space")
    if free < SOME_SPACE:
        return Check(name, Status.WARNING, f"{state}: {_size(free)} free", "training needs more as data grows")
    return Check(name, Status.OK, f"{state}, writable, {_size(free)} free")


def _permission_fix(folder: Path) -> str:
    return f"give this user write access (e.g. `chown -R $USER {folder}`) or set data_dir to another folder"


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


async def check_database(settings: Settings) -> Check:
    """The database answers, and its schema is one this teachbot can use."""
    from sqlalchemy.engine import make_url

    url = settings.effective_database_url
    shown = settings.public_view()["database_url"] or f"SQLite in the data folder ({settings.database_path.name})"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return Check("database", Status.OK, f"{shown}: created at first start")
    try:
        current, head, known = await asyncio.wait_for(asyncio.to_thread(_revisions, url), DB_SECONDS)
    except TimeoutError:
        return Check("database", Status.PROBLEM, f"{shown}: no answer in {DB_SECONDS:.0f} s", _DB_FIX)
    except Exception as exc:  # any driver error: say which, without the URL's password
        reason = _first_line(getattr(exc, "orig", None) or exc, hide=parsed.password)
        return Check("database", Status.PROBLEM, f"{shown}: cannot connect ({reason})", _DB_FIX)
    if current is None:
        return Check("database", Status.OK, f"{shown}: empty, set up at first start")
    if current == head:
        return Check("database", Status.OK, f"{shown}: reachable, schema up to date")
    if known:
        return Check("database", Status.OK, f"{shown}: reachable, schema upgraded at next start")
    return Check(
        "database", Status.PROBLEM, f"{shown}: its schema ({current}) is newer than this teachbot knows",
        "upgrade teachbot, or point database_url at another database",
    )  # fmt: skip


_DB_FIX = "check database_url and that the database server is running"


def _revisions(url: str) -> tuple[str | None, str | None, bool]:
    """The database's schema revision, the newest this teachbot has, and whether it knows the former."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from teachbot.store.db import Database, alembic_config

    db = Database(url)
    try:
        current = db.current_revision()
    finally:
        db.close()
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = current is None or scripts.get_revision(current) is not None
    except CommandError:
        known = False
    return current, scripts.get_current_head(), known


def _first_line(exc: BaseException, *, hide: str | None) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return text.replace(hide, "********") if hide else text


async def check_encoder(setting: str) -> Check:
    """The sentence encoder loads (about half a second)."""
    from teachbot.answering.encoding import load_encoder
    from teachbot.config import ENCODER_NONE

    if setting == ENCODER_NONE:
        return Check("encoder", Status.OK, "none: meaning comes from word and character n-grams only")
    try:
        encoder = await asyncio.to_thread(load_encoder, setting)
    except TeachbotError as exc:  # ConfigError: the message says what to install or set
        return Check("encoder", Status.PROBLEM, str(exc), "fix the encoder setting, or set it to `none`")
    except Exception as exc:  # a model file the runtime cannot use
        return Check("encoder", Status.PROBLEM, f"{setting}: cannot be loaded ({type(exc).__name__})",
                     "reinstall teachbot, or set encoder to `none`")  # fmt: skip
    if encoder is None:
        return Check("encoder", Status.OK, "none")
    return Check("encoder", Status.OK, f"{encoder.model_id} loads ({encoder.dim} dimensions)")


def check_voice(tts_engine: TtsEngine) -> Check:
    """The system programs and libraries voice needs (scripts/system-deps --voice installs them)."""
    wanted: list[tuple[str, str, bool]] = [  # (what, Debian package, present)
        ("ffmpeg", "ffmpeg", shutil.which("ffmpeg") is not None),
        ("libopus", "libopus0", ctypes.util.find_library("opus") is not None),
    ]
    if tts_engine is TtsEngine.ESPEAK:
        wanted.append(("espeak-ng", "espeak-ng", shutil.which("espeak-ng") is not None))
    elif tts_engine is TtsEngine.FLITE:
        wanted.append(("flite", "flite", shutil.which("flite") is not None))
    missing = [(what, package) for what, package, present in wanted if not present]
    extra = importlib.util.find_spec("nacl") is not None and importlib.util.find_spec("davey") is not None
    if not missing and extra:
        return Check("voice", Status.OK, ", ".join(what for what, _, _ in wanted) + " found")
    fixes = []
    if missing:
        fixes.append(f"sudo apt-get install {' '.join(p for _, p in missing)} (or scripts/system-deps --voice)")
    if not extra:
        fixes.append("pip install 'discord.py[voice]'")
    names = [what for what, _ in missing] + ([] if extra else ["discord.py's voice extra"])
    return Check(
        "voice", Status.WARNING, f"missing {', '.join(names)}; text chat works without it", " and ".join(fixes)
    )


async def check_discord(api_base: str, token: str) -> list[Check]:
    """The token is accepted, and the application has the Message Content intent teachbot reads messages with."""
    import aiohttp

    headers = {"Authorization": f"Bot {token}", "User-Agent": "teachbot-doctor"}
    base = api_base.rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_SECONDS)) as http:
            status, me = await _get_json(http, f"{base}/users/@me", headers)
            if status == 401:
                return [Check("Discord token", Status.PROBLEM, "Discord refused it (401 Unauthorized)", _TOKEN_FIX)]
            if status != 200 or not isinstance(me, dict):
                return [Check("Discord token", Status.PROBLEM, f"Discord answered {status}", "try again later")]
            bot = f"{me.get('username', '?')} (id {me.get('id', '?')})"
            token_check = Check("Discord token", Status.OK, f"accepted: the bot is {bot}")
            status, application = await _get_json(http, f"{base}/applications/@me", headers)
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = _network_reason(exc)
        return [Check("Discord", Status.PROBLEM, f"cannot reach {base} ({reason})", "check the network and "
                      "discord_api_base")]  # fmt: skip
    if status != 200 or not isinstance(application, dict):
        intent = Check("Message Content intent", Status.WARNING, f"cannot read the application ({status})")
    elif int(application.get("flags") or 0) & MESSAGE_CONTENT:
        intent = Check("Message Content intent", Status.OK, "on")
    else:
        detail = "off: teachbot cannot read messages, so Discord refuses its connection"
        intent = Check("Message Content intent", Status.PROBLEM, detail, INTENT_FIX)
    return [token_check, intent]


_TOKEN_FIX = (
    "copy the bot's token again (developer portal → your application → Bot → Reset Token) into TEACHBOT_DISCORD_TOKEN"
)


async def check_llm(base_url: str, key: str, model: str) -> Check:
    """The OpenAI-compatible server answers ``GET /models`` with this key and offers the chosen model."""
    import aiohttp
    from yarl import URL

    shown = str(URL(base_url).with_user(None)).rstrip("/")
    name = "LLM server"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_SECONDS)) as http:
            status, body = await _get_json(http, f"{base_url.rstrip('/')}/models", headers)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(name, Status.PROBLEM, f"cannot reach {shown} ({_network_reason(exc)})",
                     "start the server, or fix llm_base_url")  # fmt: skip
    if status in (401, 403):
        return Check(name, Status.PROBLEM, f"{shown} refused the key ({status})", "check llm_api_key")
    if status == 404:
        return Check(name, Status.WARNING, f"{shown} has no model list, so `{model}` cannot be checked")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return Check(name, Status.PROBLEM, f"{shown} answered {status} to GET /models", "check llm_base_url")
    offered = [str(m.get("id")) for m in body["data"] if isinstance(m, dict)]
    if model in offered:
        return Check(name, Status.OK, f"{shown} offers {model}")
    listed = ", ".join(offered[:8]) + (" …" if len(offered) > 8 else "")
    return Check(
        name, Status.PROBLEM, f"{shown} does not offer `{model}` (it offers {len(offered)}: {listed or 'none'})",
        "set llm_model to one it offers",
    )  # fmt: skip


def _network_reason(exc: BaseException) -> str:
    """Why a request failed, in words (never the request itself, which carries the credentials)."""
    import aiohttp

    if isinstance(exc, TimeoutError):
        return f"no answer within {HTTP_SECONDS:.0f} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection refused or unreachable"
    if isinstance(exc, aiohttp.InvalidURL):
        return "not a valid URL"
    return type(exc).__name__


async def _get_json(http: Any, url: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Status and JSON body (None when the body is not JSON)."""
    async with http.get(url, headers=headers) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return int(response.status), body
