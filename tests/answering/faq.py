"""A small FAQ the answering tests train on: three answers, five ways of asking each."""

from __future__ import annotations

FAQ = {
    "It is sunny and warm today.": [
        "what is the weather like",
        "how is the weather today",
        "will it rain today",
        "is it sunny outside",
        "what's the forecast for today",
    ],
    "My name is Teachbot.": [
        "what is your name",
        "who are you",
        "what should i call you",
        "tell me your name",
        "do you have a name",
    ],
    "Pizza is my favourite food.": [
        "what is your favourite food",
        "what do you like to eat",
        "which food do you love",
        "what's your favorite meal",
        "what would you eat for dinner",
    ],
}
PROMPTS = [p for ps in FAQ.values() for p in ps]
ANSWERS = [a for a, ps in FAQ.items() for _ in ps]
