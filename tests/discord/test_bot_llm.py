"""The bot on the openai backend: answers stream into one edited message; files reach the model."""

from __future__ import annotations

from fakes.discord_models import Upload
from fakes.discord_server import FakeDiscord
from fakes.openai_server import TEST_API_KEY, FakeOpenAIServer
from fakes.talk import MakeTeachbot


def llm(server: FakeOpenAIServer) -> dict[str, object]:
    return {"backend": "openai", "llm_base_url": server.base_url, "llm_api_key": TEST_API_KEY, "llm_model": "fake"}


async def test_answer_streams_into_one_message(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, openai_server: FakeOpenAIServer
) -> None:
    await make_teachbot(**llm(openai_server))
    await fake_discord.send_message(fake_discord.text2, fake_discord.member, "tell me about the sea")
    placeholder = await fake_discord.wait_for_bot_message(fake_discord.text2)
    assert placeholder["content"] == "…"
    final = None
    for _ in range(20):
        edit = await fake_discord.wait_for_edit(placeholder["id"])
        final = edit.payload.get("content")
        if final and not final.endswith("▌"):
            break
    assert final == "You said: tell me about the sea"
    assert TEST_API_KEY not in str(fake_discord.requests.items)


async def test_text_file_attached_to_a_message_reaches_the_prompt(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, openai_server: FakeOpenAIServer
) -> None:
    await make_teachbot(**llm(openai_server))
    notes = Upload("notes.txt", b"The secret ingredient is cardamom.", content_type="text/plain")
    await fake_discord.send_message(
        fake_discord.text2, fake_discord.member, "what is in my notes?", attachments=[notes]
    )
    await fake_discord.wait_for_bot_message(fake_discord.text2)
    await fake_discord.wait_for_edit()
    prompt = str(openai_server.chat_bodies[-1]["messages"])
    assert "cardamom" in prompt
