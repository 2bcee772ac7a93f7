"""The Discord transport: discord.py cogs that translate Discord events into service calls."""
