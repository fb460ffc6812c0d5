"""The judge-overfitting flag inside RegressionEval: the sweep judged again by the
training judge (on the same outputs, generated once), or the training judge's verdicts
imported from a file; the flag per checkpoint in the result, its JSON and its report.

The training judge here has a quirk every RLAIF checkpoint learnt: it says Yes to any
output from a ``step-*`` checkpoint. The eval judge says Yes only to a good output
(see ``tests/test_regress.py``). So under the training judge both checkpoints rise
everywhere; under the eval judge step-100 rises only on helpfulness and step-200 falls
on regression. Here step-100 answers every prompt well (a real gain on helpfulness, none
possible on regression, where the baseline was already good).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from heldout import ConfigError, Store
from heldout.config import Settings
from heldout.regress import RegressionEval, RegressionResult
from heldout.reports import write_regression_report
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer
from tests.test_regress import COHORTS, N, Servers, judge, policy, write_sweep
from tests.web.conftest import serve

TRAINING_MODEL = "training-model"


def checkpoints(body: dict[str, Any]) -> str:
    """step-100 now answers every prompt well; step-200 as in test_regress."""
    if body["model"] == "step-100":
        return "good answer from step-100"
    return policy(body)


def either_judge(body: dict[str, Any]) -> str:
    if body["model"] != TRAINING_MODEL:
        return judge(body)
    output = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert output is not None
    return "Yes" if "from step-" in output.group(1) else "No"


@pytest.fixture
def servers(openai_server: OpenAIServer) -> Iterator[Servers]:
    openai_server.responder = either_judge
    openai_server.top_logprobs = None
    with (
        OpenAIServer(responder=checkpoints) as step100,
        OpenAIServer(responder=checkpoints) as step200,
    ):
        yield Servers(openai_server, step100, step200)


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return settings_for(servers.judge)


def compare_page(folder: Path, run_id: str) -> str:
    """The dashboard's comparison page of ``run_id``, served from the store in ``folder``."""
    # The list runs the generator to its end, which stops the server and closes its store.
    pages = [httpx.get(f"{live.url}/runs/{run_id}/compare") for live in serve(folder, token=None)]
    (page,) = pages
    assert page.status_code == 200, page.text
    return page.text


def flags(result: RegressionResult) -> dict[tuple[str, str], str]:
    assert result.overfitting is not None
    return {(r.checkpoint, r.cohort): r.status for r in result.overfitting.rows}


def test_the_training_judge_rejudges_the_same_outputs_and_flags_what_only_it_sees(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    training = f"openai:{TRAINING_MODEL}@{servers.judge.base_url}"
    sweep = write_sweep(
        tmp_path,
        servers,
        extra=f'training_judge: "{training}"\noverfitting: {{}}\n',
    )

    result = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    assert flags(result) == {
        ("step-100", "*"): "ok",  # rises under both (helpfulness carries the pool)
        ("step-100", "helpfulness"): "ok",
        ("step-100", "regression"): "flagged",  # +1.0 for the training judge, 0 for eval
        ("step-200", "*"): "flagged",
        ("step-200", "helpfulness"): "ok",
        ("step-200", "regression"): "flagged",  # rises for one, falls for the other
    }
    assert result.overfitting is not None
    assert result.overfitting.flagged == ["step-100", "step-200"]
    models = [r.body["model"] for r in servers.judge.log if r.body]
    per_model = {m: models.count(m) for m in set(models)}
    assert per_model == {"judge-model": 3 * 2 * N, TRAINING_MODEL: 3 * 2 * N}
    # The checkpoints generated once: the training judge's run read the same outputs.
    assert (servers.step100.requests, servers.step200.requests) == (2 * N, 2 * N)
    exported = result.to_dict()["overfitting"]
    assert sum(r["status"] == "flagged" for r in exported["rows"]) == 3

    report = write_regression_report(sqlite_store, result, tmp_path / "report.html")
    html = report.read_text(encoding="utf-8")
    assert "<h2>Judge overfitting</h2>" in html
    assert "<strong>Flagged:</strong> step-100, step-200" in html

    # The dashboard's comparison shows the same flag, from the training judge's stored run.
    page = compare_page(tmp_path, result.run_id)
    assert "⚑ Flagged:</span> <strong>step-100, step-200</strong>" in page
    assert page.count("⚑ flagged") == 3

    # A rerun makes no call at all, under either judge.
    before = servers.counts()
    again = RegressionEval(sweep, store=sqlite_store, settings=settings).run()
    assert servers.counts() == before
    assert flags(again) == flags(result)


def test_imported_training_verdicts_give_the_flag_without_a_training_judge_call(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    # The training judge's own scores, as its pipeline logged them: it loved step-100.
    lines = [
        {
            "id": f"{cohort[0]}{i}",
            "cohort": cohort,
            "checkpoint": checkpoint,
            "axis": "criteria",
            "score": 1.0 if checkpoint == "step-100" else 0.0,
        }
        for checkpoint in ("sft", "step-100", "step-200")
        for cohort in COHORTS
        for i in range(N)
    ]
    (tmp_path / "training.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    sweep = write_sweep(tmp_path, servers, extra="overfitting: {verdicts: training.jsonl}\n")

    result = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    models = {r.body["model"] for r in servers.judge.log if r.body}
    assert models == {"judge-model"}
    assert flags(result)[("step-100", "regression")] == "flagged"
    assert flags(result)[("step-100", "helpfulness")] == "ok"
    assert flags(result)[("step-200", "*")] == "ok"  # no rise under the training judge
    # The dashboard cannot read the file where the server runs: it says where the flag is.
    assert "the flag comes from imported verdicts" in compare_page(tmp_path, result.run_id)


def test_the_flag_without_any_view_of_the_training_judge_is_refused(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    sweep = write_sweep(tmp_path, servers, extra="overfitting: {}\n")
    with pytest.raises(ConfigError, match=r"overfitting needs the training judge's view"):
        RegressionEval(sweep, store=sqlite_store, settings=settings)
    assert servers.counts() == (0, 0, 0)
