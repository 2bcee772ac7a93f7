"""Fine-tuning jobs through the real openai SDK against the loopback server's scripted life cycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.config import Settings
from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.llm import FineTuner, FineTuningUnavailable, build_client, finetune
from teachbot.tokens import count_chat_tokens

POLL = 0.05
EXAMPLES = [Example(f"question {i}?", f"answer {i}.", rejected=f"wrong {i}" if i % 2 else None) for i in range(12)]


@pytest.fixture
async def tuner(llm_settings: Settings) -> AsyncIterator[FineTuner]:
    client = build_client(llm_settings)
    try:
        yield FineTuner(client, model="gpt-4o-mini", system_prompt="You are teachbot.")
    finally:
        await client.close()


def test_prepare_supervised(tuner: FineTuner) -> None:
    plan = tuner.prepare(EXAMPLES[:10], EXAMPLES[10:], "supervised")
    lines = [json.loads(line) for line in plan.training_jsonl.decode().splitlines()]
    assert lines[0] == {
        "messages": [
            {"role": "system", "content": "You are teachbot."},
            {"role": "user", "content": "question 0?"},
            {"role": "assistant", "content": "answer 0."},
        ]
    }
    assert (plan.example_count, plan.validation_count) == (10, 2)
    assert plan.training_tokens == sum(count_chat_tokens(line["messages"]) for line in lines)
    assert plan.estimated_cost_usd == round(plan.training_tokens * 3 * 3.0 / 1e6, 2)
    assert "estimate" in plan.summary() and plan.warnings == ()


def test_prepare_dpo_keeps_preference_pairs_only(tuner: FineTuner) -> None:
    plan = tuner.prepare(EXAMPLES, (), "dpo")
    lines = [json.loads(line) for line in plan.training_jsonl.decode().splitlines()]
    assert plan.example_count == 6 and plan.skipped == 6 and plan.validation_jsonl is None
    assert lines[0] == {
        "input": {
            "messages": [{"role": "system", "content": "You are teachbot."}, {"role": "user", "content": "question 1?"}]
        },
        "preferred_output": [{"role": "assistant", "content": "answer 1."}],
        "non_preferred_output": [{"role": "assistant", "content": "wrong 1"}],
    }
    assert any("at least 10" in w for w in plan.warnings)
    with pytest.raises(UserError, match="preference pairs"):
        tuner.prepare([Example("q", "a")], (), "dpo")


def test_unknown_model_has_no_price(tuner: FineTuner) -> None:
    plan = FineTuner(tuner.client, model="llama3").prepare(EXAMPLES, (), "supervised")
    assert plan.estimated_cost_usd is None and "no cost estimate" in plan.summary()


async def test_whole_life_cycle(tuner: FineTuner, openai_server: FakeOpenAIServer) -> None:
    plan = tuner.prepare(EXAMPLES[:10], EXAMPLES[10:], "dpo")
    job_id = await tuner.start(plan)
    uploads = openai_server.requests_to("/v1/files")
    assert len(uploads) == 2 and uploads[0].body["purpose"] == "fine-tune"
    assert openai_server.files["file-1"] == plan.training_jsonl
    created = openai_server.requests_to("/v1/fine_tuning/jobs")[0].body
    assert created["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 3}}}
    assert created["validation_file"] == "file-2" and created["model"] == "gpt-4o-mini"

    statuses = [s async for s in tuner.follow(job_id, poll_interval=POLL)]
    assert [s.status for s in statuses] == ["validating_files", "queued", "running", "succeeded"]
    messages = [e.message for s in statuses for e in s.events]
    assert messages[0].startswith("Validating training file") and messages[-1] == "The job has successfully completed"
    assert len(messages) == len(set(messages))  # each event once, oldest first
    assert statuses[-1].finished and statuses[-1].fine_tuned_model == f"ft:gpt-4o-mini:teachbot:{job_id}"


async def test_following_rides_out_a_passing_outage(tuner: FineTuner, openai_server: FakeOpenAIServer) -> None:
    """The job runs on at the server while our polls fail: a few 503s in a row (beyond the client's own
    retries) are waited out, not reported as a failed run."""
    job_id = await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    openai_server.fail(503, path=f"/v1/fine_tuning/jobs/{job_id}", times=7)  # two polls fail, the third gets through
    statuses = [s async for s in tuner.follow(job_id, poll_interval=POLL)]
    assert statuses[-1].status == "succeeded"


async def test_following_gives_up_on_a_lasting_outage(
    tuner: FineTuner, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finetune, "POLL_FAILURES", 2)
    job_id = await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    openai_server.fail(503, path=f"/v1/fine_tuning/jobs/{job_id}", times=1000)
    with pytest.raises(UserError, match=r"internal error \(HTTP 503\)"):
        _ = [s async for s in tuner.follow(job_id, poll_interval=POLL)]
    assert len(openai_server.requests_to(f"/v1/fine_tuning/jobs/{job_id}")) == 3 * 3  # 3 polls × 3 tries each


async def test_failed_job(tuner: FineTuner, openai_server: FakeOpenAIServer) -> None:
    openai_server.job_outcome = "failed"
    job_id = await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    statuses = [s async for s in tuner.follow(job_id, poll_interval=POLL)]
    last = statuses[-1]
    assert last.status == "failed" and last.fine_tuned_model is None
    assert last.error == "The training file has too few examples."
    assert any(e.level == "error" for e in last.events)


async def test_cancel(tuner: FineTuner, openai_server: FakeOpenAIServer) -> None:
    job_id = await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    follower = tuner.follow(job_id, poll_interval=POLL)
    first = await anext(follower)
    assert first.status == "validating_files"
    cancelled = await tuner.cancel(job_id)
    assert cancelled.status == "cancelled"
    rest = [s async for s in follower]
    assert rest[-1].status == "cancelled" and rest[-1].events[-1].message == "Fine-tuning job cancelled"
    assert openai_server.requests_to(f"/v1/fine_tuning/jobs/{job_id}/cancel")
    with pytest.raises(UserError):
        await tuner.cancel(job_id)  # already finished


async def test_server_without_fine_tuning(tuner: FineTuner, openai_server: FakeOpenAIServer) -> None:
    openai_server.fine_tuning = False
    with pytest.raises(FineTuningUnavailable, match=r"not available on this server.*export the data") as refused:
        await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    assert refused.value.see == "datasets export NAME openai-chat"  # a command that exists
    with pytest.raises(FineTuningUnavailable):
        await tuner.status("ftjob-1")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "You are not allowed to create fine-tuning jobs"),
        (400, "Fine-tuning is not available for your organization on this plan"),
    ],
)
async def test_openai_refusals(tuner: FineTuner, openai_server: FakeOpenAIServer, status: int, message: str) -> None:
    openai_server.fail(status, path="/v1/fine_tuning/jobs", message=message)
    with pytest.raises(FineTuningUnavailable) as caught:
        await tuner.start(tuner.prepare(EXAMPLES, (), "supervised"))
    assert message not in str(caught.value)


async def test_unknown_job_is_not_unavailability(tuner: FineTuner) -> None:
    with pytest.raises(UserError, match="does not know that fine-tuning job") as caught:
        await tuner.status("ftjob-nope")
    assert not isinstance(caught.value, FineTuningUnavailable)
