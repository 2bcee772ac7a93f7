"""teachbot: a Discord bot you talk to, by text and by voice, and teach."""

__version__ = "0.1.0"
