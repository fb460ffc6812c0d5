"""Dataset.add_evaluation: one call, real server, real store."""

from __future__ import annotations

from heldout import Criteria, Dataset, Sample, Store
from tests.support.openai_server import OpenAIServer


def dataset() -> Dataset:
    rows = [
        Sample(id=f"q{i}", cohort=["helpfulness", "honesty"][i % 2], input="Q?", output=f"A{i}")
        for i in range(6)
    ]
    return Dataset.from_samples(rows, name="tiny")


def test_add_evaluation_returns_scores_aggregates_and_a_dataframe(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.top_logprobs = {"Yes": -0.05, "No": -3.0}
    judge = f"openai:test-model@{openai_server.base_url}"
    openai_server.fail_next("400")
    result = dataset().add_evaluation(
        Criteria("Correct.", judge=judge), store=sqlite_store, progress=False
    )
    assert len(result.scores) == 6
    assert len(result.errors) == 1
    assert result.errors[0].error_kind == "refused"
    helpfulness = result.aggregate("helpfulness", "criteria")
    honesty = result.aggregate("honesty", "criteria")
    assert helpfulness is not None
    assert honesty is not None
    assert helpfulness.n_ok + honesty.n_ok == 5
    assert helpfulness.n_error + honesty.n_error == 1
    frame = result.to_pandas()
    assert list(frame.columns[:7]) == [
        "sample_id",
        "cohort",
        "checkpoint",
        "evaluator",
        "status",
        "score",
        "passed",
    ]
    assert frame["score"].isna().sum() == 1  # the error has no score, not a 0
    assert frame.loc[frame["status"] == "ok", "passed"].all()
    assert "errors=1" in repr(result)

    again = dataset().add_evaluation(
        Criteria("Correct.", judge=judge), store=sqlite_store, progress=False
    )
    assert again.run_id == result.run_id
    assert again.summary.computed == 1  # only the error is redone
    assert not again.errors


async def test_aadd_evaluation_is_the_async_twin(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    judge = f"openai:test-model@{openai_server.base_url}"
    result = await dataset().aadd_evaluation(
        Criteria("Correct.", judge=judge), store=sqlite_store, progress=False
    )
    assert result.summary.computed == 6
    assert openai_server.requests == 6
    honesty = result.aggregate("honesty", "criteria")
    assert honesty is not None
    assert (honesty.n_ok, honesty.n_error) == (3, 0)
    assert result.aggregate("honesty", "no-such-evaluator") is None
