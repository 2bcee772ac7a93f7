"""The terminal chat as a person uses it, in a pseudo-terminal: the first screen, line editing and
history with the arrow keys, ``exit``, Ctrl-C and Ctrl-D."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from fakes.env import child_env

pytestmark = pytest.mark.slow  # each test starts teachbot as a process

UP = "\x1b[A"


def spawn(tmp_path: Path, trained_data_dir: Path) -> tuple[pexpect.spawn, str]:
    """teachbot chat in a pseudo-terminal, at its first prompt; and its first screen."""
    data = tmp_path / "data"
    if not data.exists():
        shutil.copytree(trained_data_dir, data)
    env = child_env()
    env.update(TEACHBOT_DATA_DIR=str(data), TERM="xterm", COLUMNS="100", LINES="30")
    child = pexpect.spawn(
        sys.executable, ["-m", "teachbot", "chat"], env=env, cwd=str(tmp_path), encoding="utf-8", timeout=90
    )
    child.expect("Leave with exit, Ctrl-D or Ctrl-C.")
    screen = child.before
    child.expect("you>")
    return child, screen


def test_first_screen_answers_history_and_exit(tmp_path: Path, trained_data_dir: Path) -> None:
    child, screen = spawn(tmp_path, trained_data_dir)
    assert "!help" in screen and "!correct" in screen
    child.sendline("!hi")
    child.expect("HI!")
    child.expect("you>")
    child.send(UP)  # the arrow key recalls the last line instead of printing ^[[A
    child.sendline("")
    child.expect("HI!")
    child.expect("you>")
    child.sendline("what is the capital of the planet zorblax")
    child.expect(r"\(#(\d+)\)")
    answer_id = child.match.group(1)
    child.expect("you>")
    child.sendline("!correct 42 is the answer.")  # text, not "correct answer 42"
    child.expect("Learned")
    child.expect("you>")
    child.sendline(f"!correct #{answer_id} Zorbopolis is the capital.")
    child.expect("Learned")
    child.expect("you>")
    child.sendline("exit")  # a word to leave, not a question
    child.expect("Bye.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "!hi" in (tmp_path / "data" / "console-history").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_and_ctrl_d_leave_at_once(tmp_path: Path, trained_data_dir: Path, key: str) -> None:
    child, _ = spawn(tmp_path, trained_data_dir)
    child.send("half a question")
    child.send(key if key == "\x03" else "\x15" + key)  # Ctrl-D leaves on an empty line (Ctrl-U clears it)
    child.expect("Bye.", timeout=10)
    child.expect(pexpect.EOF, timeout=10)
    child.close()
    assert child.exitstatus == 0


def test_interactive_teaching_in_the_terminal(tmp_path: Path, trained_data_dir: Path) -> None:
    child, screen = spawn(tmp_path, trained_data_dir)
    assert "!interactive" in screen
    child.sendline("!interactive")
    child.expect("Interactive teaching is on")
    child.expect("you>")
    child.sendline("can you learn")
    child.expect(r"2\. I answer questions")
    child.expect("a number picks another")
    child.expect("teach>")  # the prompt says a choice is awaited
    child.sendline("2")
    child.expect("Learned")
    child.expect("you>")
    child.sendline("can you learn")
    child.expect(r"1\. I answer questions.*taught\) ← my answer")
    child.expect("teach>")
    child.sendline("")
    child.expect("Kept.")
    child.expect("you>")
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_instruction_is_rendered_not_raw_markdown(tmp_path: Path, trained_data_dir: Path) -> None:
    child, _ = spawn(tmp_path, trained_data_dir)
    child.sendline("!instruction")
    child.expect("How to use teachbot")
    child.expect("you>")
    shown = child.before
    assert "Teach me" in shown and "**Teach me**" not in shown and "# How to use" not in shown
    child.sendline("exit")
    child.expect(pexpect.EOF)
