"""RegressionEval end to end: a sweep of checkpoints, each served or read from a file,
judged by a real OpenAI-protocol server, stored in SQLite, analysed and exported.

The checkpoints (10 ``helpfulness`` and 10 ``regression`` prompts each):

- ``sft``, the baseline, from an outputs file: poor on helpfulness, good on regression;
- ``step-100``, served by its own endpoint: good on 7 of 10 helpfulness prompts and on
  every regression prompt (an improvement);
- ``step-200``, served by another endpoint: good on every helpfulness prompt, poor on
  every regression prompt (the best objective, but a capability regression).

The judge says Yes to an output that contains "good" and No otherwise (it serves no
logprobs, so P(Yes) is 1 or 0).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, Store
from heldout.config import Settings
from heldout.constitutions import DEFAULT_CONSTITUTION
from heldout.regress import RegressionEval, RegressionResult
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

COHORTS = ("helpfulness", "regression")
N = 10  # prompts per cohort
AXES = ("helpfulness", "harmlessness", "honesty", "tone")
CUSTOM = "custom:heldout-default"  # custom:<constitution name>
CRITERIA = "  - {type: criteria, criteria: The answer is good.}"
SELECTION = """\
selection:
  objective: {metrics: [criteria], cohorts: [helpfulness]}
  guards: [{metric: criteria, cohorts: [regression], max_drop: 0.1}]
"""


def policy(body: dict[str, Any]) -> str:
    """How the served checkpoints answer ``"<cohort> question <i>"``."""
    model = body["model"]
    cohort, _, index = body["messages"][-1]["content"].split()
    if model == "step-100":
        good = cohort == "regression" or int(index) < 7
    else:
        good = cohort == "helpfulness"
    return f"{'good' if good else 'poor'} answer from {model}"


def judge(body: dict[str, Any]) -> str:
    output = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert output is not None, "every judge request shows the output"
    return "Yes" if "good" in output.group(1) else "No"


@dataclass
class Servers:
    judge: OpenAIServer
    step100: OpenAIServer
    step200: OpenAIServer

    def counts(self) -> tuple[int, int, int]:
        return self.judge.requests, self.step100.requests, self.step200.requests


@pytest.fixture
def servers(openai_server: OpenAIServer) -> Iterator[Servers]:
    openai_server.responder = judge
    openai_server.top_logprobs = None
    with (
        OpenAIServer(responder=policy) as step100,
        OpenAIServer(responder=policy) as step200,
    ):
        yield Servers(openai_server, step100, step200)


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return settings_for(servers.judge)  # max_retries=2, fast backoff


def write_sweep(
    folder: Path,
    servers: Servers,
    *,
    evaluators: str = CRITERIA,
    extra: str = SELECTION,
    n: int = N,
) -> Path:
    """Prompts, the baseline's outputs and the sweep file in ``folder``."""
    ids = [(f"{cohort[0]}{i}", cohort, i) for cohort in COHORTS for i in range(n)]
    prompts = [
        {"id": sid, "cohort": cohort, "input": f"{cohort} question {i}"} for sid, cohort, i in ids
    ]
    # The baseline is poor on helpfulness and good on regression.
    sft = [
        {"id": sid, "output": f"{'good' if cohort == 'regression' else 'poor'} answer from sft"}
        for sid, cohort, _ in ids
    ]
    for name, lines in (("prompts.jsonl", prompts), ("sft.jsonl", sft)):
        (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    sweep = folder / "sweep.yaml"
    sweep.write_text(
        f"""\
name: beta-sweep
dataset: {{path: prompts.jsonl}}
eval_judge: "openai:judge-model@{servers.judge.base_url}"
evaluators:
{evaluators}
baseline: sft
workers: 1
checkpoints:
  - {{name: sft, outputs: sft.jsonl}}
  - {{name: step-100, endpoint: "openai:step-100@{servers.step100.base_url}",
     params: {{beta: 0.1}}}}
  - {{name: step-200, endpoint: "openai:step-200@{servers.step200.base_url}",
     params: {{beta: 0.3}}}}
statistics: {{n_resamples: 2000}}
{extra}""",
        encoding="utf-8",
    )
    return sweep


def outage_after(server: OpenAIServer, answers: int, failed_requests: int) -> None:
    """After its ``answers``-th answer, ``server`` fails the next requests with HTTP 500."""
    served = 0

    def responder(body: dict[str, Any]) -> str:
        nonlocal served
        served += 1
        if served == answers:
            server.fail_next(*["500"] * failed_requests)
        return policy(body)

    server.responder = responder


def rows(result: RegressionResult, metric: str = "criteria") -> dict[tuple[str, str], Any]:
    return {(r.checkpoint, r.cohort): r for r in result.table.rows if r.metric == metric}


def test_a_failed_generation_is_an_error_score_and_the_rerun_only_fills_the_gaps(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    sweep = write_sweep(tmp_path, servers)
    # One worker: step-200's endpoint answers h0-h2, then fails three attempts (one
    # try and two retries) for h3 and three for h4, then recovers.
    outage_after(servers.step200, answers=3, failed_requests=6)

    first = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    assert servers.step200.pending_faults == 0
    failures = first.generated["step-200"].failures
    assert sorted(failures) == ["h3", "h4"]
    assert all(e.kind == "unavailable" and "HTTP 500" in str(e) for e in failures.values())
    assert first.generated["step-100"].failures == {}
    errors = [s for s in sqlite_store.scores(first.run_id) if s.status == "error"]
    assert sorted((s.checkpoint, s.sample_id, s.evaluator) for s in errors) == [
        ("step-200", "h3", "criteria"),
        ("step-200", "h4", "criteria"),
    ]
    assert {s.error_kind for s in errors} == {"generation"}
    assert all(s.value is None and "produced no output" in (s.error or "") for s in errors)

    table = rows(first)
    # Counted next to the mean, never averaged in: step-200 is good on every helpfulness
    # prompt it answered.
    h200 = table[("step-200", "helpfulness")]
    assert (h200.n, h200.n_error, h200.mean, h200.n_paired) == (8, 2, 1.0, 8)
    assert h200.delta == 1.0  # sft is poor on all of them
    pooled = table[("step-200", "*")]
    assert (pooled.n, pooled.n_error) == (18, 2)
    assert pooled.mean == pytest.approx(8 / 18)
    assert table[("step-100", "helpfulness")].mean == pytest.approx(0.7)
    assert table[("step-100", "regression")].delta == 0.0
    assert table[("step-200", "regression")].delta == -1.0
    assert first.summary is not None
    assert first.summary.judge_calls == servers.judge.requests == 3 * 20 - 2

    # The endpoint is healthy again: only h3 and h4 are generated and judged.
    before = servers.counts()
    second = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    assert second.run_id == first.run_id
    assert second.generated["step-200"].failures == {}
    judge_calls, step100_calls, step200_calls = (
        after - was for after, was in zip(servers.counts(), before, strict=True)
    )
    assert (judge_calls, step100_calls, step200_calls) == (2, 0, 2)
    assert second.summary is not None
    assert (second.summary.computed, second.summary.judge_calls) == (2, 2)
    assert second.summary.resumed == second.summary.total - 2 == 3 * 20 - 2
    stored = sqlite_store.scores(second.run_id)
    assert len(stored) == 3 * 20
    assert {s.status for s in stored} == {"ok"}
    fixed = rows(second)[("step-200", "helpfulness")]
    assert (fixed.n, fixed.n_error, fixed.mean) == (10, 0, 1.0)

    # A resumed run: nothing to generate, nothing to judge, the same table.
    before = servers.counts()
    third = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    assert servers.counts() == before
    assert third.summary is not None
    assert (third.summary.computed, third.summary.judge_calls) == (0, 0)
    assert {g.stats.cache_hits for g in third.generated.values()} == {20}
    assert third.table == second.table
    assert third.selection == second.selection


def test_selection_ships_the_best_checkpoint_that_keeps_its_capabilities(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    result = RegressionEval(
        write_sweep(tmp_path, servers), store=sqlite_store, settings=settings
    ).run()

    selection = result.selection
    assert selection is not None
    assert selection.chosen == "step-100"
    verdicts = {v.checkpoint: v for v in selection.candidates}
    assert {c: v.status for c, v in verdicts.items()} == {
        "sft": "eligible",
        "step-100": "chosen",
        "step-200": "rejected",
    }
    # step-200 has the best objective; only the guard keeps it out.
    assert verdicts["step-200"].alignment == 1.0
    assert verdicts["step-100"].alignment == pytest.approx(0.7)
    assert verdicts["sft"].alignment == 0.0
    drop = rows(result)[("step-200", "regression")]
    assert drop.significant
    assert drop.p_adjusted is not None
    assert drop.p_adjusted < 0.05
    assert any(
        "criteria on regression dropped 1.000" in r and "beyond the 0.1 tolerance" in r
        for r in verdicts["step-200"].reasons
    )
    # The regressions the guard saw are listed prompt by prompt.
    regressions = [c for c in result.changes if c.kind == "regression"]
    assert {(c.checkpoint, c.cohort) for c in regressions} == {("step-200", "regression")}
    assert len(regressions) == N
    fixes = {(c.checkpoint, c.sample_id) for c in result.changes if c.kind == "fix"}
    assert fixes == {("step-100", f"h{i}") for i in range(7)} | {
        ("step-200", f"h{i}") for i in range(N)
    }


def test_json_and_csv_exports_hold_the_table(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    servers.step200.fail_next("500", "500", "500")  # step-200 gets no answer for h0
    result = RegressionEval(
        write_sweep(tmp_path, servers), store=sqlite_store, settings=settings
    ).run()

    data = json.loads(result.write_json(tmp_path / "out" / "result.json").read_text())
    assert data["run_id"] == result.run_id
    assert data["baseline"] == "sft"
    assert data["table"] == result.table.to_records()
    assert len(data["table"]) == 3 * 3  # 3 checkpoints x (2 cohorts + pooled)
    assert data["checkpoints"]["step-200"] == {
        "source": f"openai:step-200@{servers.step200.base_url}",
        "params": {"beta": 0.3},
    }
    assert data["checkpoints"]["sft"]["source"] == f"outputs:{tmp_path / 'sft.jsonl'}"
    assert list(data["generation_failures"]["step-200"]) == ["h0"]
    assert "HTTP 500" in data["generation_failures"]["step-200"]["h0"]
    assert data["selection"]["chosen"] == "step-100"

    with result.write_csv(tmp_path / "out" / "table.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(result.table.rows)
    for line, row in zip(lines, result.table.rows, strict=True):
        assert (line["checkpoint"], line["cohort"], line["metric"]) == (
            row.checkpoint,
            row.cohort,
            row.metric,
        )
        assert (int(line["n"]), int(line["n_error"])) == (row.n, row.n_error)
        assert row.mean is not None
        assert float(line["mean"]) == row.mean
    assert lines[-3]["checkpoint"] == "step-200"
    assert (lines[-3]["cohort"], lines[-3]["n_error"]) == ("helpfulness", "1")


def test_constitution_axes_are_metrics_of_their_own(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    # The custom evaluator asks one Yes/No question per axis and reads P(Yes) from the
    # first token's logprobs.
    servers.judge.responder = None
    servers.judge.top_logprobs = {"Yes": -0.3, "No": -1.5}
    p_yes = math.exp(-0.3) / (math.exp(-0.3) + math.exp(-1.5))
    evaluators = "  - {type: custom, constitution: default, options: {method: probability}}"
    sweep = write_sweep(tmp_path, servers, evaluators=evaluators, extra="", n=2)
    servers.step200.fail_next("500", "500", "500")  # step-200 gets no answer for h0

    result = RegressionEval(sweep, store=sqlite_store, settings=settings).run()

    bodies = [r.body for r in servers.judge.log if r.body is not None]
    assert len(bodies) == len(AXES) * (3 * 4 - 1)
    assert all(b["logprobs"] is True and b["top_logprobs"] >= 2 for b in bodies)
    metrics = list(dict.fromkeys(r.metric for r in result.table.rows))
    assert metrics == [CUSTOM, *(f"{CUSTOM}.{axis}" for axis in AXES)]
    for axis in AXES:
        by_row = rows(result, f"{CUSTOM}.{axis}")
        assert set(by_row) == {
            (c, k) for c in ("sft", "step-100", "step-200") for k in (*COHORTS, "*")
        }
        assert [r.mean for r in by_row.values()] == pytest.approx([p_yes] * len(by_row))
        assert by_row[("step-100", "*")].n == 4
        # The failed generation is an error on every axis, not a score.
        failed = by_row[("step-200", "helpfulness")]
        assert (failed.n, failed.n_error) == (1, 1)
    stored = sqlite_store.scores(result.run_id, checkpoint="sft")
    assert stored[0].metadata["axes"].keys() == set(AXES)


def test_the_training_judge_cannot_be_the_eval_judge(
    tmp_path: Path, servers: Servers, settings: Settings
) -> None:
    eval_judge = f"openai:judge-model@{servers.judge.base_url}"

    def sweep(*lines: str, evaluators: str = CRITERIA) -> Path:
        return write_sweep(tmp_path, servers, evaluators=evaluators, extra="\n".join(lines))

    with pytest.raises(ConfigError, match=r"eval judge '.*judge-model@.*' is the training judge"):
        RegressionEval(sweep(f'training_judge: "{eval_judge}"'), settings=settings)
    # The same model behind another spec is the same judge.
    with pytest.raises(ConfigError, match="is the training judge 'openai:judge-model-2024-08-06'"):
        RegressionEval(sweep("training_judge: openai:judge-model-2024-08-06"), settings=settings)
    # So is an evaluator's own judge.
    own_judge = "  - {type: criteria, criteria: Good., judge: 'openai:trainer'}"
    with pytest.raises(ConfigError, match="eval judge 'openai:trainer' is the training judge"):
        RegressionEval(
            sweep("training_judge: openai:trainer", evaluators=own_judge), settings=settings
        )
    # The configured training judge counts when the sweep names none.
    with pytest.raises(ConfigError, match="is the training judge"):
        RegressionEval(sweep(), settings=settings.model_copy(update={"training_judge": eval_judge}))

    allowed = RegressionEval(
        sweep(f'training_judge: "{eval_judge}"', "allow_training_judge: true"), settings=settings
    )
    assert (allowed.eval_judge, allowed.training_judge) == (eval_judge, eval_judge)
    apart = RegressionEval(sweep("training_judge: openai:trainer"), settings=settings)
    assert apart.training_judge == "openai:trainer"


def test_a_constitution_is_a_shipped_name_or_a_file_next_to_the_sweep(
    tmp_path: Path, servers: Servers, settings: Settings
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = DEFAULT_CONSTITUTION.read_text(encoding="utf-8")
    (rules / "mine.yaml").write_text(text.replace("name: heldout-default", "name: mine", 1))

    def names(constitution: str) -> list[str]:
        line = f"  - {{type: custom, constitution: {constitution}}}"
        sweep = write_sweep(tmp_path, servers, evaluators=line, extra="", n=1)
        return [e.name for e in RegressionEval(sweep, settings=settings).evaluators]

    assert names("default") == [CUSTOM]
    assert names("rules/mine.yaml") == ["custom:mine"]
    with pytest.raises(ConfigError, match=r"constitution 'nope' is neither .* Shipped: default"):
        names("nope")


def test_the_run_in_the_store_keeps_its_sweep_for_the_dashboard(
    tmp_path: Path, servers: Servers, settings: Settings, sqlite_store: Store
) -> None:
    from heldout.sweep import SweepConfig
    from heldout.web._views import _comparison

    result = RegressionEval(
        write_sweep(tmp_path, servers, n=2), store=sqlite_store, settings=settings
    ).run()

    run = sqlite_store.get_run(result.run_id)
    assert run is not None
    assert SweepConfig.model_validate(run.config["sweep"]) == result.sweep
    # The dashboard's comparison page analyses the run from that config alone.
    assert _comparison(sqlite_store, run).table == result.table
