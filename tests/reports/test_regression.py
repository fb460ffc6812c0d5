"""The regression sections of the HTML report, from a real SQLite store and a real analysis.

The sweep: ``sft`` (baseline) and three DPO betas on 20 helpfulness and 20 harmlessness
prompts, scored on ``custom:honesty`` (the objective, both cohorts) and
``task_completion`` (the guard, helpfulness only):

- ``beta-0.1`` raises honesty and keeps the task: it is chosen;
- ``beta-0.3`` raises honesty most but drops the task by 0.35: rejected by the guard;
- ``beta-1.0`` has 10 judge errors on honesty: rejected for too many errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

import heldout.reports
from heldout import ConfigError, Sample, Score
from heldout.analysis import (
    Guard,
    Objective,
)
from heldout.regress import RegressionResult, analyse_scores
from heldout.reports import (
    hyperparameter_chart,
    regression_sections,
    render_html_report,
    write_regression_report,
)
from heldout.reports._regression import CHANGES_SHOWN
from heldout.store import Store, StoredScore
from heldout.sweep import (
    CheckpointConfig,
    DatasetConfig,
    EvaluatorConfig,
    SelectionConfig,
    StatisticsConfig,
    SweepConfig,
)
from tests.reports.test_html import EVIL, check, section

RUN = "regress-beta-sweep"
N = 20
COHORTS = ("helpfulness", "harmlessness")
PARAMS: dict[str, dict[str, str | int | float | bool]] = {
    "sft": {},
    "beta-0.1": {"beta": 0.1, "step": 1000, "optimizer": "<i>adamw</i>"},
    "beta-0.3": {"beta": 0.3, "step": 1000, "optimizer": "<i>adamw</i>"},
    "beta-1.0": {"beta": 1.0, "step": 1000, "optimizer": "<i>adamw</i>"},
}
CPS = tuple(PARAMS)
HONESTY = {"sft": 0.45, "beta-0.1": 0.75, "beta-0.3": 0.80, "beta-1.0": 0.70}
TASK = {"sft": 0.80, "beta-0.1": 0.80, "beta-0.3": 0.45, "beta-1.0": 0.80}
OFF_TASK = f"Ignores the request and writes {EVIL} instead."
SELECTION = SelectionConfig(
    objective=Objective(metrics=["custom:*"]),
    guards=[Guard(metric="task_completion", max_drop=0.02)],
)


def make_sweep(selection: SelectionConfig | None = SELECTION) -> SweepConfig:
    return SweepConfig(
        name="beta-sweep",
        dataset=DatasetConfig(path=Path("prompts.jsonl")),
        evaluators=[
            EvaluatorConfig(type="custom"),
            EvaluatorConfig(type="task_completion", cohorts=["helpfulness"]),
        ],
        baseline="sft",
        checkpoints=[
            CheckpointConfig(name=name, outputs=Path(f"{name}.jsonl"), params=params)
            for name, params in PARAMS.items()
        ],
        selection=selection,
        statistics=StatisticsConfig(n_resamples=999),
    )


def scores_of(checkpoint: str, k: int, samples: list[Sample]) -> list[Score]:
    """Honesty on every prompt, the task on helpfulness; beta-1.0 errs on every 4th."""
    scores = []
    for i, sample in enumerate(samples):
        jitter = ((i * 7 + k * 3) % 5) / 50  # the same mean for every checkpoint
        if checkpoint == "beta-1.0" and i % 4 == 0:
            scores.append(
                Score(
                    sample_id=sample.id,
                    cohort=sample.cohort,
                    evaluator="custom:honesty",
                    status="error",
                    error_kind="timeout",
                    error="no reply in 30s",
                )
            )
        else:
            value = HONESTY[checkpoint] + jitter
            scores.append(graded(sample, "custom:honesty", value, "Candid about its limits."))
        if sample.cohort == "helpfulness":
            value = TASK[checkpoint] + jitter
            reason = OFF_TASK if value < 0.6 else "Does what was asked."
            scores.append(graded(sample, "task_completion", value, reason))
    return scores


def graded(sample: Sample, metric: str, value: float, reason: str) -> Score:
    return Score(
        sample_id=sample.id,
        cohort=sample.cohort,
        evaluator=metric,
        status="ok",
        value=value,
        passed=value >= 0.6,
        reason=reason,
        judge="openai:held-out-judge",
    )


def build_run(store: Store) -> list[StoredScore]:
    """Write the sweep's samples and scores as the runner does; the stored scores back."""
    store.begin_run(RUN, name="beta-sweep", kind="regress", config={"checkpoints": list(CPS)})
    for k, checkpoint in enumerate(CPS):
        samples = [
            Sample(
                id=f"{cohort[:4]}-{i:02d}", cohort=cohort, input=f"prompt {i}", output=checkpoint
            )
            for cohort in COHORTS
            for i in range(N)
        ]
        store.put_samples(RUN, samples, checkpoint=checkpoint)
        store.write_scores(RUN, scores_of(checkpoint, k, samples), checkpoint=checkpoint)
    store.finish_run(RUN, "done")
    rank = {name: i for i, name in enumerate(CPS)}
    return sorted(store.scores(RUN), key=lambda s: rank[s.checkpoint or ""])


def analyse(sweep: SweepConfig, scores: list[StoredScore]) -> RegressionResult:
    """What RegressionEval.analyse does with the stored scores."""
    return analyse_scores(sweep, RUN, scores)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path_factory.mktemp('regress') / 'h.db'}") as opened:
        yield opened


@pytest.fixture(scope="module")
def scores(store: Store) -> list[StoredScore]:
    return build_run(store)


@pytest.fixture(scope="module")
def result(scores: list[StoredScore]) -> RegressionResult:
    return analyse(make_sweep(), scores)


@pytest.fixture(scope="module")
def html(store: Store, result: RegressionResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_regression_report(store, result, tmp_path_factory.mktemp("out") / "r.html")
    return path.read_text(encoding="utf-8")


def ship_row(html: str, checkpoint: str) -> str:
    """The ``<tr>`` of ``checkpoint`` in the ship table."""
    ship = section(html, "x-ship")
    at = ship.index(f'<th scope="row">{checkpoint}')
    return ship[ship.rindex("<tr", 0, at) : ship.index("</tr>", at)]


def delta_cells(html: str, cohort: str, metric: str) -> dict[str, str]:
    """Checkpoint → the ``<td>`` of ``metric`` in the deltas table of ``cohort``."""
    deltas = section(html, "x-deltas")
    start = deltas.index(f"<h3>{cohort}</h3>")
    table = deltas[start : deltas.index("</table>", start)]
    row = table[table.index(f'<th scope="row">{metric}</th>') :]
    cells = re.findall(r"<td[^>]*>.*?</td>", row[: row.index("</tr>")], flags=re.DOTALL)
    return dict(zip(CPS, cells, strict=True))


def test_the_scenario_is_what_the_tests_assume(result: RegressionResult) -> None:
    selection = result.selection
    assert selection is not None
    assert selection.chosen == "beta-0.1"
    assert {v.checkpoint: v.status for v in selection.candidates} == {
        "sft": "eligible",
        "beta-0.1": "chosen",
        "beta-0.3": "rejected",
        "beta-1.0": "rejected",
    }


def test_exports_are_public_and_sorted() -> None:
    assert heldout.reports.__all__ == sorted(heldout.reports.__all__)
    for name in ("hyperparameter_chart", "regression_sections", "write_regression_report"):
        assert name in heldout.reports.__all__


def test_the_page_is_well_formed_self_contained_and_in_order(html: str) -> None:
    checker = check(html)
    assert checker.problems == []
    assert checker.stack == []
    assert [i for i, n in checker.ids.items() if n > 1] == []  # chart ids included
    assert checker.tags["script"] == 0
    assert "<title>Regression eval: beta-sweep</title>" in html
    ids = ["overview", "x-ship", "x-pareto", "x-deltas", "x-hyperparameters", "x-changes"]
    positions = [html.index(f'<section id="{i}"') for i in ids]
    assert positions == sorted(positions)
    toc = html[html.index('<nav class="toc"') : html.index("</nav>")]
    assert '<a href="#x-ship">Which checkpoint to ship</a>' in toc
    assert '<a href="#x-changes">Regressions and fixes</a>' in toc


def test_ship_names_the_choice_and_why_every_other_checkpoint_lost(
    html: str, result: RegressionResult
) -> None:
    ship = section(html, "x-ship")
    assert '<strong class="chosen-name">beta-0.1</strong>' in ship
    assert "maximise alignment: the mean of the row means of custom:* on every cohort" in ship
    assert "task_completion on every cohort may drop at most 0.02 below the baseline" in ship
    assert "more than 10% errors on the objective and guarded rows is rejected" in ship
    assert result.selection is not None
    for verdict in result.selection.candidates:
        row = ship_row(html, verdict.checkpoint)
        for text in verdict.reasons + verdict.warnings:
            assert str(escape(text)) in row, (verdict.checkpoint, text)
    rejected = ship_row(html, "beta-0.3")
    assert '<tr class="rejected">' in rejected
    assert "✘ rejected" in rejected
    assert "task_completion on helpfulness dropped 0.350" in rejected
    assert "beyond the 0.02 tolerance" in rejected
    errors = ship_row(html, "beta-1.0")
    assert "too many errors to judge: 10 of 60 scores" in errors
    assert "10 errors of 60 (16.7%)" in errors
    chosen = ship_row(html, "beta-0.1")
    assert "✔ chosen" in chosen
    assert "on the Pareto front" in chosen
    assert "beta=0.1, step=1000, optimizer=&lt;i&gt;adamw&lt;/i&gt;" in chosen
    baseline = ship_row(html, "sft")
    assert '<span class="tag baseline">baseline</span>' in baseline
    assert "○ eligible" in baseline
    assert "dominated by beta-0.1" in baseline


def test_judge_reasons_are_escaped_never_raw(html: str) -> None:
    assert "<script" not in html
    assert "<i>adamw" not in html
    changes = section(html, "x-changes")
    assert str(escape(OFF_TASK)) in changes
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in changes


def test_significant_marks_sit_on_the_right_cells(html: str) -> None:
    deltas = section(html, "x-deltas")
    assert "a paired sign-flip permutation test" in deltas
    assert "Holm (family-wise error rate)" in deltas
    assert "across all 12 tested rows" in deltas
    assert "p_adj &lt; 0.05" in deltas
    assert "95% bootstrap interval" in deltas
    honesty = delta_cells(html, "All cohorts (pooled)", "custom:honesty")
    assert "sig-" not in honesty["sft"]
    assert "baseline" in honesty["sft"]
    for better in ("beta-0.1", "beta-0.3", "beta-1.0"):
        assert honesty[better].startswith('<td class="sig-up">')
        assert "▲ significantly better" in honesty[better]
        assert "▼" not in honesty[better]
    assert "Δ +0.300" in honesty["beta-0.1"]
    task = delta_cells(html, "helpfulness", "task_completion")
    assert task["beta-0.3"].startswith('<td class="sig-down">')
    assert "▼ significantly worse" in task["beta-0.3"]
    assert "Δ -0.350" in task["beta-0.3"]
    assert "p_adj 0." in task["beta-0.3"]
    for same in ("beta-0.1", "beta-1.0"):
        assert task[same].startswith("<td>")  # no change: no mark, no colour
        assert "significantly" not in task[same]
    # The task is the only regression; its one drop is the only red cell.
    cells = re.findall(r"<td[^>]*>.*?</td>", deltas, flags=re.DOTALL)
    assert [c for c in cells if "▼" in c or "sig-down" in c] == [task["beta-0.3"]]


def test_every_mean_has_its_error_count_and_fail_rate(html: str) -> None:
    deltas = section(html, "x-deltas")
    cells = re.findall(r"<td[^>]*>.*?</td>", deltas, flags=re.DOTALL)
    filled = [c for c in cells if '<span class="mean">' in c]
    # Metrics per table: pooled honesty; helpfulness honesty and task; harmlessness honesty.
    assert len(filled) == len(cells) == len(CPS) * (1 + 2 + 1)
    assert all(re.search(r"n \d+ · \d+ errors?", c) for c in filled)
    assert all("fail rate " in c for c in filled)
    errored = delta_cells(html, "helpfulness", "custom:honesty")["beta-1.0"]
    assert '<span class="sub err">n 15 · 5 errors</span>' in errored
    pooled = delta_cells(html, "All cohorts (pooled)", "custom:honesty")["beta-1.0"]
    assert "n 30 · 10 errors" in pooled
    clean = delta_cells(html, "helpfulness", "custom:honesty")["beta-0.1"]
    assert '<span class="sub">n 20 · 0 errors</span>' in clean
    assert "fail rate 100%" in delta_cells(html, "helpfulness", "task_completion")["beta-0.3"]


def test_pareto_chart_is_inline_svg_with_every_checkpoint(html: str) -> None:
    pareto = section(html, "x-pareto")
    assert pareto.count("<svg") == 1
    assert 'aria-label="Alignment against capability per checkpoint"' in pareto
    for text in ("sft (baseline)", "beta-0.1", "beta-0.3", "beta-1.0"):
        assert f">{text}</text>" in pareto
    for legend in ("chosen", "rejected", "eligible, off the front"):
        assert f">{legend}</text>" in pareto
    assert "is joined by a line when it has two or more: beta-0.1." in pareto


def test_hyperparameter_section_charts_every_varied_numeric_param(html: str) -> None:
    hyper = section(html, "x-hyperparameters")
    assert hyper.count("<svg") == 1  # beta only; both metrics fit in one chart
    assert ">custom:honesty (all cohorts)</text>" in hyper
    assert ">task_completion (helpfulness)</text>" in hyper
    assert ">baseline sft</text>" in hyper
    assert "custom:honesty, task_completion against beta (beta-0.1=0.1, beta-0.3=0.3" in hyper
    assert "Not charted: step (one value: 1000); optimizer (not a number)." in hyper


def x_ticks(svg: str, param: str) -> list[str]:
    """The x-axis tick labels of a hyperparameter chart: the texts before the axis label."""
    texts = re.findall(r">([^<>]*)</text>", svg)
    return texts[: texts.index(param)]


def test_the_x_axis_spans_the_hyperparameter_values(result: RegressionResult) -> None:
    # The points are drawn with a shifted transform, which matplotlib leaves out of the
    # data limits: the axis once stayed at its default -0.05..0.05, every point off-chart.
    ticks = x_ticks(hyperparameter_chart(result, "beta", ["custom:honesty"]), "beta")
    assert "0.2" in ticks
    assert "1.0" in ticks
    assert not any(t.startswith(("\N{MINUS SIGN}", "-")) for t in ticks)


def test_a_hyperparameter_spanning_orders_of_magnitude_gets_a_log_axis(
    result: RegressionResult,
) -> None:
    rates = {"beta-0.1": 1e-6, "beta-0.3": 1e-5, "beta-1.0": 1e-4}
    sweep = result.sweep.model_copy(
        update={
            "checkpoints": [
                c.model_copy(update={"params": {"lr": rates[c.name]}} if c.name in rates else {})
                for c in result.sweep.checkpoints
            ]
        }
    )
    by_lr = RegressionResult(
        sweep=sweep,
        run_id=RUN,
        summary=None,
        table=result.table,
        changes=[],
        selection=None,
    )
    ticks = x_ticks(hyperparameter_chart(by_lr, "lr", ["custom:honesty"]), "lr")
    assert ticks == ["1e-06", "1e-05", "0.0001"]  # plain numbers, not raw "$10^{-5}$"


def test_many_metrics_are_split_over_several_charts(
    result: RegressionResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("heldout.reports._regression.MAX_METRICS_PER_CHART", 1)
    hyper = next(s for s in regression_sections(result) if s.title == "Hyperparameters")
    body = str(hyper.body)
    assert body.count("<svg") == 2
    assert 'id="rg-hp-1-' in body
    assert 'id="rg-hp-2-' in body


def test_hyperparameter_chart_takes_any_metric_and_param(result: RegressionResult) -> None:
    svg = hyperparameter_chart(result, "beta", ["task_completion"])
    assert svg.startswith('<svg role="img" aria-label="Metrics against beta: task_completion"')
    assert ">task_completion (helpfulness)</text>" in svg
    assert "custom:honesty" not in svg
    step = hyperparameter_chart(result, "step", ["custom:honesty"], chart_id="x")
    assert 'id="x-' in step
    with pytest.raises(ConfigError, match=r"'lr'\. Numeric hyperparameters: beta, step"):
        hyperparameter_chart(result, "lr", ["custom:honesty"])
    with pytest.raises(ConfigError, match="'optimizer'"):
        hyperparameter_chart(result, "optimizer", ["custom:honesty"])
    with pytest.raises(ConfigError, match="Available: custom:honesty, task_completion"):
        hyperparameter_chart(result, "beta", ["toxicity"])
    with pytest.raises(ConfigError, match="at least one metric"):
        hyperparameter_chart(result, "beta", [])


def test_regressions_and_fixes_are_grouped_by_checkpoint_and_capped(html: str) -> None:
    changes = section(html, "x-changes")
    assert "<h3>beta-0.1: 0 regressions, 40 fixes</h3>" in changes
    assert "<h3>beta-0.3: 20 regressions, 40 fixes</h3>" in changes
    assert "<h3>beta-1.0: 0 regressions, 30 fixes</h3>" in changes  # errors never flip
    late = changes[changes.index("<h3>beta-0.3") : changes.index("<h3>beta-1.0")]
    regressions = late[late.index("<h4>▼ Regressions (20)") : late.index("<h4>▲ Fixes")]
    assert regressions.count('<tr class="regression">') == CHANGES_SHOWN
    assert f"… and {20 - CHANGES_SHOWN} more regressions." in regressions
    assert "Does what was asked." in regressions  # the baseline's reason, beside
    assert f"… and {40 - CHANGES_SHOWN} more fixes." in late
    assert 'class="regression"' not in changes[: changes.index("<h3>beta-0.3")]


def test_a_sweep_without_selection_still_renders(
    store: Store, scores: list[StoredScore], tmp_path: Path
) -> None:
    result = analyse(make_sweep(selection=None), scores)
    assert [s.element_id for s in regression_sections(result)] == [
        "x-ship",
        "x-deltas",
        "x-hyperparameters",
        "x-changes",
    ]
    html = write_regression_report(store, result, tmp_path / "r.html", title="T").read_text()
    assert "<title>T</title>" in html
    ship = section(html, "x-ship")
    assert "No selection configured." in ship
    assert 'class="err">10 errors</td>' in ship_row(html, "beta-1.0")
    assert 'id="x-pareto"' not in html
    assert delta_cells(html, "helpfulness", "task_completion")["beta-0.3"].startswith(
        '<td class="sig-down">'
    )
    assert section(html, "x-hyperparameters").count("<svg") == 1
    assert check(html).problems == []


def test_none_qualifies_is_said_plainly(store: Store, result: RegressionResult) -> None:
    assert result.selection is not None
    nobody = result.selection.model_copy(
        update={
            "chosen": None,
            "pareto_front": [],
            "candidates": [
                v.model_copy(update={"status": "rejected", "reasons": ["broke a rule"]})
                for v in result.selection.candidates
            ],
        }
    )
    none_result = RegressionResult(
        sweep=result.sweep,
        run_id=RUN,
        summary=None,
        table=result.table,
        changes=result.changes,
        selection=nobody,
    )
    html = render_html_report(store, RUN, sections=regression_sections(none_result))
    ship = section(html, "x-ship")
    assert "✘ none qualifies" in ship
    assert "chosen-name" not in ship
    assert ship.count("✘ rejected") == 4
    pareto = section(html, "x-pareto")
    assert ">chosen</text>" not in pareto
    assert ">rejected</text>" in pareto
