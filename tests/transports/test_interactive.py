"""Interactive teaching in the terminal: after each answer the likeliest answers, and the next line chooses."""

from __future__ import annotations

from teachbot.app import App
from teachbot.transports.console import ConsoleChat

TEACH = "Reply to one of my answers with `!correct <the better answer>`"  # the starter set's answers
ABOUT = "I answer questions, learn from"
ZORBLAX = "what is the capital of the planet zorblax"
UNSURE = "can you learn"  # the starter model answers how to teach it, not very sure, its skills next


async def test_the_command_turns_it_on_and_off(app: App) -> None:
    chat = ConsoleChat(app, "global")
    assert (await chat.handle("!interactive")).startswith("Interactive teaching is on")
    assert chat.interactive.on
    assert await chat.handle("!interactive off") == "Interactive teaching is off."
    assert (await chat.handle("!interactive on")).startswith("Interactive teaching is on")
    assert "!interactive" in await chat.handle("!help")


async def test_a_number_picks_another_answer_and_it_applies_at_once(app: App) -> None:
    chat = ConsoleChat(app, "global", interactive=True)
    answer = await chat.handle(UNSURE)
    assert answer.startswith(TEACH)
    menu = chat.menu().splitlines()
    assert menu[0].startswith(f"  1. {TEACH}") and menu[0].endswith("← my answer")
    assert menu[1].startswith(f"  2. {ABOUT}") and "%)" in menu[1]
    assert menu[-1] == "  Enter keeps it · a number picks another · or type the right answer"
    learned = await chat.handle("2")
    assert learned.startswith("Learned (C") and UNSURE in learned
    assert chat.menu() == ""  # chosen: nothing waits
    assert (await chat.handle(UNSURE)).startswith(ABOUT)
    assert chat.menu().splitlines()[0].endswith("taught) ← my answer")
    assert await chat.handle("") == "Kept."
    assert (await chat.handle("!undo")).startswith("Undone")
    assert (await chat.handle(UNSURE)).startswith(TEACH)


async def test_a_typed_answer_teaches_an_unknown_question(app: App) -> None:
    chat = ConsoleChat(app, "global", interactive=True)
    answer = await chat.handle(ZORBLAX)
    assert answer == app.settings.fallback_answer  # no "!correct" hint: the choices say what to do
    assert chat.menu().splitlines()[-1] == "  Enter skips · or type the right answer"
    assert (await chat.handle("Zorbopolis is the capital.")).startswith("Learned")
    assert await chat.handle(ZORBLAX) == "Zorbopolis is the capital."


async def test_wrong_numbers_and_commands_while_choosing(app: App) -> None:
    chat = ConsoleChat(app, "global", interactive=True)
    await chat.handle(UNSURE)
    count = len(chat.menu().splitlines()) - 1
    refused = await chat.handle("7")
    assert refused == f"There is no answer 7 (choose 1 to {count}); to teach “7”, type `!correct 7`."
    assert chat.menu()  # still waiting for a choice
    assert await chat.handle("!hi") == "HI!"  # a command drops the choices
    assert chat.menu() == ""
    assert await chat.handle("") == ""
    await chat.handle(ZORBLAX)
    assert await chat.handle("") == "Skipped."
    assert not (await chat.handle(ZORBLAX)).startswith("Learned")  # nothing was taught


async def test_off_answers_as_before(app: App) -> None:
    chat = ConsoleChat(app, "global")
    assert (await chat.handle(ZORBLAX)).endswith("Teach me: `!correct <the right answer>`.")
    assert chat.menu() == ""
    assert await chat.handle("2") != "Kept."  # an ordinary question
