"""Allow ``python -m teachbot``."""

from teachbot.cli import main

main()
