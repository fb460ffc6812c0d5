"""A production cohort evaluated like any dataset, against the OpenAI-protocol test server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from heldout import ConfigError, Settings, Store
from heldout.tracing import CohortRules, evaluate_cohorts, store_spans
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer
from tests.tracing.test_cohorts import NOW, trace


async def test_each_cohort_becomes_a_production_run(
    sqlite_store: Store, openai_server: OpenAIServer
) -> None:
    rules = CohortRules.model_validate(
        {
            "cohorts": [
                {"name": "orders"},
                {"name": "empty", "match": [{"field": "model", "exists": True}]},
            ],
            "evaluators": [{"type": "criteria", "criteria": "The answer is polite."}],
        }
    )
    store_spans(
        sqlite_store, [trace(1, "where is my parcel"), trace(2, "cancel it")], rules, at=NOW
    )
    judge = f"openai:test-model@{openai_server.base_url}"
    at = datetime(2025, 6, 1, 13, tzinfo=UTC)
    settings = settings_for(openai_server)
    (summary,) = await evaluate_cohorts(sqlite_store, rules, settings=settings, judge=judge, at=at)
    assert summary.run_id == "production-orders-20250601T130000Z"
    assert summary.computed == 2
    run = sqlite_store.get_run(summary.run_id)
    assert run is not None
    assert (run.kind, run.name) == ("production", "orders")
    assert {s.cohort for s in sqlite_store.scores(summary.run_id)} == {"orders"}
    # The next tick judges the same traces again from the cache: no new calls.
    calls = openai_server.requests
    later = datetime(2025, 6, 1, 13, 10, tzinfo=UTC)
    await evaluate_cohorts(sqlite_store, rules, settings=settings, judge=judge, at=later)
    assert openai_server.requests == calls
    assert len([r for r in sqlite_store.list_runs() if r.kind == "production"]) == 2


async def test_evaluating_without_evaluators_says_what_to_add(sqlite_store: Store) -> None:
    rules = CohortRules.model_validate({"cohorts": [{"name": "c"}]})
    with pytest.raises(ConfigError, match="evaluators:"):
        await evaluate_cohorts(sqlite_store, rules, settings=Settings())
