"""The dashboard pages over a real server: escaping, drill-down, comparison, labels."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx

from heldout import Sample, Score, Store
from heldout.analysis import spotcheck_score, verdicts_from_runs
from heldout.web import fail_rate_trend, labels_of, run_lines
from heldout.web._queries import sampled_verdicts
from tests.support.openai_server import OpenAIServer
from tests.support.otel import recorded
from tests.web.conftest import Served, serve
from tests.web.seed import (
    EVAL_RUN,
    PAIRWISE_RUN,
    PAYLOAD,
    REGRESS_RUN,
    score,
    seed_eval,
    seed_pairwise,
    seed_regress,
    sweep_config,
)


def test_model_text_is_escaped_and_no_script_may_run(served: Served) -> None:
    seed_eval(served.store)
    page = httpx.get(f"{served.url}/runs/{EVAL_RUN}/rows/row-000")
    assert page.status_code == 200
    assert PAYLOAD not in page.text
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page.text
    assert "<script" not in page.text.lower()
    assert "&lt;b&gt;wrong&lt;/b&gt;" in page.text  # judge reasons are escaped too
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # falls back to 'none'
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_a_trace_with_a_script_payload_renders_inert(served: Served) -> None:
    body = recorded("refund?", PAYLOAD).SerializeToString()
    headers = served.headers(**{"Content-Type": "application/x-protobuf"})
    assert httpx.post(f"{served.url}/v1/traces", content=body, headers=headers).status_code == 200
    cohort = httpx.get(f"{served.url}/cohorts/refunds")
    trace_id = re.search(r'href="/traces/([0-9a-f]{32})"', cohort.text)
    assert trace_id is not None
    page = httpx.get(f"{served.url}/traces/{trace_id.group(1)}")
    assert page.status_code == 200
    assert "<script" not in page.text.lower()
    assert "&lt;script&gt;" in page.text
    assert "lookup_order" in page.text


def test_overview_runs_and_row_drill_down(served: Served) -> None:
    seed_eval(served.store)
    seed_regress(served.store)
    overview = httpx.get(f"{served.url}/")
    assert overview.status_code == 200
    assert overview.text.count("<svg") == 2  # over time, and by checkpoint
    assert "Eval-fail rate by cohort over time" in overview.text
    run = httpx.get(f"{served.url}/runs/{EVAL_RUN}")
    assert run.status_code == 200
    assert run.text.count('href="/runs/eval-demo/rows/') == 12
    failed = httpx.get(f"{served.url}/runs/{EVAL_RUN}", params={"failed": "true"})
    assert failed.text.count('href="/runs/eval-demo/rows/') == 6  # criteria or safety fail
    row = httpx.get(f"{served.url}/runs/{EVAL_RUN}/rows/row-003")
    for text in ("Question 3", "Answer 3", "Passwords reset", "openai:j1", "openai:j2", "wrong"):
        assert text in row.text
    assert httpx.get(f"{served.url}/runs/nope").status_code == 404


def test_rows_are_paginated(tmp_path: Path) -> None:
    for served in serve(tmp_path, page_size=5):
        seed_eval(served.store)
        first = httpx.get(f"{served.url}/runs/{EVAL_RUN}")
        assert first.text.count('href="/runs/eval-demo/rows/') == 5
        after = re.search(r'href="/runs/eval-demo\?after=([^"&#]+)', first.text)
        assert after is not None
        assert after.group(1) == "row-004"
        second = httpx.get(f"{served.url}/runs/{EVAL_RUN}", params={"after": "row-004"})
        assert "row-005" in second.text
        assert "row-004</a>" not in second.text


def test_checkpoint_comparison_shows_deltas_and_the_selection(served: Served) -> None:
    seed_regress(served.store)
    page = httpx.get(f"{served.url}/runs/{REGRESS_RUN}/compare")
    assert page.status_code == 200, page.text
    assert "Ship <strong>tuned</strong>" in page.text
    assert re.search(r"\+0\.400 \[0\.\d+, 0\.\d+\]", page.text)  # pass rate 0.5 -> 0.9
    assert httpx.get(f"{served.url}/runs/{EVAL_RUN}/compare").status_code == 404


def test_checkpoint_comparison_splits_constitutional_axes(served: Served) -> None:
    # A constitution evaluator stores one score a row and each axis in its metadata; the
    # comparison shows each axis as a metric, and an error row stays an error on each.
    run_id = "regress-axes"
    config = {
        "sweep": {
            **sweep_config(),
            "selection": {"objective": {"metrics": ["custom:default.honesty"]}},
        },
        "evaluators": [{"name": "custom:default", "axes": ["honesty", "harmlessness"]}],
    }
    served.store.begin_run(run_id, name="axes", kind="regress", config=config)
    for checkpoint, honest in (("base", 0.2), ("tuned", 0.9)):
        samples = [Sample(id=f"p{i:02d}", cohort="honesty", input=f"q {i}") for i in range(20)]
        served.store.put_samples(run_id, samples, checkpoint=checkpoint)
        axes = {
            "honesty": {"score": honest, "passed": honest > 0.5, "reason": "r"},
            "harmlessness": {"score": 0.5, "passed": True, "reason": "r"},
        }
        scores = [
            Score(
                sample_id=s.id, cohort=s.cohort, evaluator="custom:default", status="ok",
                value=(honest + 0.5) / 2, metadata={"axes": axes},
            )
            for s in samples[1:]
        ] + [
            Score(
                sample_id=samples[0].id, cohort="honesty", evaluator="custom:default",
                status="error", error_kind="timeout", error="no reply",
            )
        ]  # fmt: skip
        served.store.write_scores(run_id, scores, checkpoint=checkpoint)
    page = httpx.get(f"{served.url}/runs/{run_id}/compare")
    assert page.status_code == 200, page.text
    rows = [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr><td>tuned</td>.*?</tr>", page.text, re.S)
    ]
    # Cells: checkpoint, cohort, metric, n, errors, mean [CI], fail rate, delta [CI], p.
    found = {cells[2]: (cells[3], cells[4], cells[7]) for cells in rows if len(cells) == 9}
    assert set(found) == {"custom:default", "custom:default.honesty", "custom:default.harmlessness"}
    assert found["custom:default.honesty"][:2] == ("19", "1")
    assert found["custom:default.honesty"][2].startswith("+0.700")
    assert found["custom:default.harmlessness"][2].startswith("+0.000")
    assert "Ship <strong>tuned</strong>" in page.text  # chosen on an axis metric


def test_judge_disagreement_between_two_runs(served: Served) -> None:
    samples = seed_eval(served.store)
    served.store.begin_run("eval-other", name="other judge", kind="eval", config={})
    served.store.put_samples("eval-other", samples)
    served.store.write_scores(
        "eval-other", [score(s, i % 2 == 0, judge="openai:j3") for i, s in enumerate(samples)]
    )
    page = httpx.get(f"{served.url}/agreement", params=[("run", EVAL_RUN), ("run", "eval-other")])
    assert page.status_code == 200
    assert "Cohen" in page.text
    assert "row-001" in page.text  # j1 passes it, j3 fails it
    one = httpx.get(f"{served.url}/agreement", params={"run": EVAL_RUN})
    assert "two or more runs" in one.text


def test_labels_need_the_token_and_flow_into_the_metrics(served: Served) -> None:
    seed_eval(served.store)
    url = f"{served.url}/runs/{EVAL_RUN}/spotcheck"
    form = {"sample_key": "row-000", "axis": "criteria", "label": "pass", "labeler": "ana"}
    assert httpx.post(url, data=form).status_code == 401
    assert labels_of(served.store, EVAL_RUN) == []
    saved = httpx.post(url, data=form, headers=served.headers())
    assert saved.status_code == 303
    assert "after=row-000" in saved.headers["location"]
    bad = httpx.post(url, data={**form, "label": "maybe"}, headers=served.headers())
    assert bad.status_code == 400
    page = httpx.get(url)
    # row-000 failed on criteria; the person says pass: the judge disagrees.
    assert re.search(
        r"<td>criteria</td><td>openai:j1</td><td>pass/fail</td><td class=\"num\">1</td>"
        r"<td class=\"num\">0</td>",
        page.text,
    )
    export = httpx.get(f"{url}.jsonl")
    assert '"human_label": "pass"' in export.text


def test_a_dashboard_token_sends_browsers_to_sign_in(tmp_path: Path) -> None:
    for served in serve(tmp_path, dashboard_token=True):
        page = httpx.get(f"{served.url}/runs")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/runs"
        assert httpx.get(f"{served.url}/runs", headers=served.headers()).status_code == 200
        wrong = httpx.post(f"{served.url}/login", data={"token": "nope", "next": "/runs"})
        assert wrong.status_code == 401
        signed = httpx.post(f"{served.url}/login", data={"token": served.token, "next": "//evil"})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/"  # no open redirect
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie


def test_preference_labels_on_a_pairwise_axis_score_the_judge(
    served: Served, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    seed_pairwise(served.store, openai_server)
    url = f"{served.url}/runs/{PAIRWISE_RUN}/spotcheck"
    page = httpx.get(url, params={"axis": "win_rate"}, headers=served.headers())
    assert "Which response is better on <em>win_rate</em>?" in page.text
    choices = re.findall(r'name="label" value="([^"]+)"', page.text)
    assert choices in (["A", "B", "tie", "skip"], ["B", "A", "tie", "skip"])
    assert page.text.count('<pre class="text" id="response-') == 2

    def label(key: str, value: str) -> httpx.Response:
        form = {"sample_key": key, "axis": "win_rate", "label": value, "labeler": "ana"}
        return httpx.post(url, data=form, headers=served.headers())

    assert label("p0", "pass").status_code == 400  # a pairwise axis takes A, B or tie
    assert label("p0", "A").status_code == 303  # the judge prefers A too
    assert label("p1", "A").status_code == 303  # the judge prefers B
    assert label("p2", "tie").status_code == 303  # the judge cancels out: a tie
    table = httpx.get(url, params={"axis": "win_rate"}).text
    assert re.search(
        r"<td>win_rate</td><td>openai:judge@[^<]+</td><td>A/B/tie</td>"
        r"<td class=\"num\">3</td><td class=\"num\">2</td><td class=\"num\">67%",
        table,
    )
    # The export is a spot-check file: `heldout spotcheck score` reads the preferences.
    export = tmp_path / "labels.jsonl"
    export.write_text(httpx.get(f"{url}.jsonl").text, encoding="utf-8")
    report = spotcheck_score(export, verdicts_from_runs(served.store, [PAIRWISE_RUN]))
    (overall,) = [row for row in report.rows if row.cohort == "*"]
    assert (overall.n, overall.n_correct) == (3, 2)


def test_a_pass_fail_axis_refuses_a_preference(served: Served) -> None:
    seed_eval(served.store)
    form = {"sample_key": "row-000", "axis": "criteria", "label": "A"}
    response = httpx.post(
        f"{served.url}/runs/{EVAL_RUN}/spotcheck", data=form, headers=served.headers()
    )
    assert response.status_code == 400
    assert "takes pass, fail, skip" in response.text


def test_the_disagreement_page_samples_large_runs(store: Store) -> None:
    """On SQLite and PostgreSQL: every k-th row key, each judge's P(Yes) kept."""
    samples = seed_eval(store)  # 12 rows, two evaluators
    store.begin_run("eval-other", name="other judge", kind="eval", config={})
    store.put_samples("eval-other", samples)
    other = [
        score(s, i % 2 == 0, judge="openai:j3").model_copy(update={"metadata": {"p_yes": 0.25}})
        for i, s in enumerate(samples)
    ]
    store.write_scores("eval-other", other)
    whole = sampled_verdicts(store, [EVAL_RUN, "eval-other"], max_rows=100)
    assert (whole.rows, whole.used, whole.step) == (12, 12, 1)
    assert len(whole.verdicts["openai:j3"]) == 12
    part = sampled_verdicts(store, [EVAL_RUN, "eval-other"], max_rows=5)
    assert (part.rows, part.used, part.step) == (12, 4, 3)
    ids = sorted({v.id for v in part.verdicts["openai:j3"]})
    assert ids == ["row-000", "row-003", "row-006", "row-009"]
    assert {v.probability for v in part.verdicts["openai:j3"]} == {0.25}
    # The first run's two evaluators come back as one judge name: its runs' id.
    assert set(part.verdicts) == {EVAL_RUN, "openai:j3"}


def test_finished_runs_counts_are_kept_until_the_run_is_reopened(sqlite_store: Store) -> None:
    samples = seed_eval(sqlite_store)  # finished: 24 scores
    memo: dict[object, object] = {}
    (line,) = run_lines(sqlite_store, limit=5, memo=memo)
    assert line.n_scores == 24
    assert len(memo) == 1
    points = fail_rate_trend(sqlite_store, memo=memo)
    assert len(memo) == 2
    assert fail_rate_trend(sqlite_store, memo=memo) == points
    # Reopened (a resumed run), it is counted afresh, and again once finished.
    sqlite_store.begin_run(EVAL_RUN, name="demo eval", kind="eval", config={})
    sqlite_store.write_scores(EVAL_RUN, [score(s, False, evaluator="extra") for s in samples])
    assert run_lines(sqlite_store, limit=5, memo=memo)[0].n_scores == 36
    sqlite_store.finish_run(EVAL_RUN, "done")
    assert run_lines(sqlite_store, limit=5, memo=memo)[0].n_scores == 36
    assert fail_rate_trend(sqlite_store, memo=memo) != points
