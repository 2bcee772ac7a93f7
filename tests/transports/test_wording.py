"""The words of replies: written once, with the configured prefix, and read well."""

from __future__ import annotations

from datetime import UTC, datetime

from teachbot.datasets.service import DatasetInfo
from teachbot.errors import UserError
from teachbot.teaching.service import ReviewItem, TeachResult, TeachStatus
from teachbot.transports import wording


def test_a_quoted_answer_that_ends_a_sentence_gets_one_full_stop() -> None:
    ended = wording.teach_result(TeachResult("C1", TeachStatus.APPLIED, "capital?", "Paris is the capital."), "!")
    assert ended.endswith("“Paris is the capital.”")
    bare = wording.teach_result(TeachResult("C2", TeachStatus.APPLIED, "capital?", "Paris"), "!")
    assert bare.endswith("“Paris”.")


def test_review_items_from_a_test_run_read_as_words() -> None:
    line = wording.review_item(ReviewItem("C3", "test:1577682314261954562", "q", "", "The answer."))
    assert "1577682314261954562" not in line and "a test run" in line and "I had no answer" in line


def test_a_dataset_listed_does_not_say_unchanged() -> None:
    info = DatasetInfo("faq", "global", 1, 10, "ab" * 32, "positive", "t", datetime.now(UTC), new_version=False)
    assert "unchanged" not in wording.dataset_info(info)
    assert "unchanged, same content as v1" in wording.dataset_info(info, imported=True)


def test_a_service_names_a_command_and_the_edge_adds_the_prefix() -> None:
    error = UserError("There is no model version `v9` here.", see="models list")
    assert wording.user_error(error, "?") == "There is no model version `v9` here. See `?models list`."
    assert wording.teach_hint("?", terminal=True) == "Teach me: `?correct <the right answer>`."
