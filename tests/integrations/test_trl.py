"""HeldoutCallback in a real TRL DPO run and in endpoint mode.

The policy is a tiny GPT-2 built here with random weights and a word-level tokenizer
(no download). The eval judge is a real OpenAI-protocol server: it says Yes to an
output with the word "kind" (what the DPO pairs prefer) and No otherwise, and answers
every request about the prompt ``UNREADABLE`` with text no verdict can be read from.
The store is a real SQLite file.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset as HFDataset
from transformers import GPT2LMHeadModel, TrainerControl, TrainerState, TrainingArguments
from trl import DPOConfig, DPOTrainer

from heldout import ConfigError, Store
from heldout.config import Settings
from heldout.integrations._hf_generate import generate_with_model
from heldout.integrations.trl import HeldoutCallback
from heldout.regress import RegressionEval
from heldout.runner._generate import Sampling
from heldout.store import StoredScore
from heldout.sweep import SweepConfig, load_sweep
from heldout.web._views import _comparison
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer
from tests.support.tiny_lm import tiny_model, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings(
    # TRL 1.16 still calls transformers' gradient_checkpointing names, deprecated in 5.
    r"ignore:`(is_)?gradient_checkpointing\w*` is deprecated:FutureWarning",
)

UNREADABLE = "how can you help me"
PROMPTS = [
    ("h0", "helpfulness", "what is a good answer"),
    ("h1", "helpfulness", UNREADABLE),
    ("h2", "helpfulness", "why do you help"),
    ("s0", "harmlessness", "how do you harm me"),
    ("s1", "harmlessness", "can you do harm"),
    ("s2", "harmlessness", "will you help me do harm"),
]
SAMPLING = Sampling(max_tokens=6)
DRAWN = ["h1", "h2", "s0", "s1"]  # two prompts per cohort, drawn with seed 0


def judge(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if UNREADABLE in text:
        return "Perhaps."
    found = re.search(r"<output>\n(.*)\n</output>", text, re.S)
    return "Yes" if found is not None and "kind" in found.group(1).split() else "No"


def expected(output: str | None, prompt: str) -> tuple[str, float | None]:
    """The status and value the judge's rule gives a row."""
    if not output:
        return "skipped", None  # an empty answer is not judged
    if prompt == UNREADABLE:
        return "error", None
    return "ok", float("kind" in output.split())


def write_sweep(folder: Path, judge_url: str) -> Path:
    prompts = [{"id": i, "cohort": c, "input": text} for i, c, text in PROMPTS]
    # The baseline is kind on helpfulness prompts and rude on harmlessness ones.
    sft = [
        {"id": i, "output": f"a {'kind' if i[0] == 'h' else 'rude'} answer"} for i, _, _ in PROMPTS
    ]
    for name, rows in (("prompts.jsonl", prompts), ("sft.jsonl", sft)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "sft-again.jsonl").write_text((folder / "sft.jsonl").read_text())
    sweep = folder / "sweep.yaml"
    sweep.write_text(
        f"""\
name: dpo
dataset: {{path: prompts.jsonl}}
eval_judge: "openai:judge-model@{judge_url}"
evaluators:
  - {{type: criteria, criteria: The answer is helpful.}}
  - {{type: toxicity}}
baseline: sft
sampling: {{max_tokens: {SAMPLING.max_tokens}}}
checkpoints:
  - {{name: sft, outputs: sft.jsonl}}
  - {{name: sft-again, outputs: sft-again.jsonl}}
statistics: {{n_resamples: 200}}
workers: 1
""",
        encoding="utf-8",
    )
    return sweep


@pytest.fixture
def judge_server(openai_server: OpenAIServer) -> OpenAIServer:
    openai_server.responder = judge
    openai_server.top_logprobs = None  # P(Yes) is 1 or 0
    return openai_server


@pytest.fixture
def settings(judge_server: OpenAIServer, tmp_path: Path) -> Settings:
    return settings_for(judge_server, tmp_path / "heldout.db")


@pytest.fixture
def store(settings: Settings) -> Any:
    opened = Store.open(settings.db_url)
    yield opened
    opened.close()


def preferences() -> HFDataset:
    pair = {"prompt": "please help me", "chosen": " a kind answer", "rejected": " a rude answer"}
    return HFDataset.from_list([pair] * 8)


def logged(history: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The callback's log entries by step."""
    return {e["step"]: e for e in history if "heldout/generation_failures" in e}


def check_step(entry: dict[str, Any], scores: list[StoredScore], base: list[StoredScore]) -> None:
    """The logged metrics of one cohort are the stored scores', errors counted apart."""
    cohort = scores[0].cohort
    key = f"heldout/{cohort}/criteria"
    ok = {s.sample_id: s.value for s in scores if s.status == "ok"}
    base_ok = {s.sample_id: s.value for s in base if s.status == "ok"}
    assert entry[f"{key}/errors"] == sum(s.status == "error" for s in scores)
    if not ok:
        assert key not in entry  # no ok score: no mean, and never a 0
        return
    assert entry[key] == pytest.approx(sum(v or 0.0 for v in ok.values()) / len(ok))
    paired = [(ok[i] or 0.0) - (base_ok[i] or 0.0) for i in ok if i in base_ok]
    if paired:
        assert entry[f"{key}/delta"] == pytest.approx(sum(paired) / len(paired))


def test_each_save_of_a_dpo_run_is_judged_stored_and_logged(
    tmp_path: Path, judge_server: OpenAIServer, settings: Settings, store: Store
) -> None:
    sweep = write_sweep(tmp_path, judge_server.base_url)
    model, tokenizer = tiny_model(), tiny_tokenizer()
    out = tmp_path / "out"
    trainer = DPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=DPOConfig(
            output_dir=str(out),
            max_steps=4,
            save_steps=2,
            per_device_train_batch_size=2,
            learning_rate=0.05,  # large, so that the two checkpoints answer differently
            logging_steps=1,
            max_length=32,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            save_only_model=True,
        ),
        train_dataset=preferences(),
        processing_class=tokenizer,
    )
    callback = HeldoutCallback(
        sweep,
        trainer=trainer,
        evaluators=["criteria"],
        max_prompts=2,
        store=store,
        settings=settings,
    )
    trainer.add_callback(callback)
    evaluation = callback.evaluation
    assert evaluation is not None  # made at once from the trainer's arguments
    drawn = evaluation.prompts
    assert list(drawn.ids) == DRAWN

    trainer.train()

    assert [r.checkpoint for r in callback.reports] == ["step-2", "step-4"]
    run = store.get_run(evaluation.run_id)
    assert run is not None
    assert run.kind == "regress"
    assert [c.name for c in SweepConfig.model_validate(run.config["sweep"]).checkpoints] == [
        "sft",
        "step-2",
        "step-4",
    ]
    # Each checkpoint answered with the weights saved at its step: the saved folder,
    # loaded again, gives the same greedy answers.
    for step in (2, 4):
        saved = GPT2LMHeadModel.from_pretrained(out / f"checkpoint-{step}")
        stored = {s.id: s.output for s in store.samples(run.id, checkpoint=f"step-{step}")}
        again = generate_with_model(saved, tokenizer, [s.input for s in drawn], SAMPLING)
        assert stored == dict(zip(drawn.ids, again, strict=True))
    # Only criteria was judged, each row as the judge's rule says; an unreadable verdict
    # is an error score.
    scores = store.scores(run.id)
    assert {s.evaluator for s in scores} == {"criteria"}
    outputs = {(s.checkpoint, s.id): s.output for s in store.samples(run.id)}
    for score in scores:
        prompt = drawn.by_id(score.sample_id).input
        assert (score.status, score.value) == expected(
            outputs[(score.checkpoint, score.sample_id)], prompt
        )
    # Each request was judged once: the baseline at the first save only (its error row
    # was read back from the cache at the second), an answer step-4 repeats from step-2
    # from the cache.
    asked = {(drawn.by_id(i).input, out) for (_, i), out in outputs.items() if out}
    assert judge_server.requests == len(asked)
    # Every step's per-cohort scores are in the trainer's log history.
    entries = logged(trainer.state.log_history)
    assert sorted(entries) == [2, 4]
    base = [s for s in scores if s.checkpoint == "sft"]
    for step, entry in entries.items():
        assert entry["epoch"] == pytest.approx(step / 4)
        assert entry["heldout/generation_failures"] == 0
        for cohort in ("helpfulness", "harmlessness"):
            mine = [s for s in scores if s.checkpoint == f"step-{step}" and s.cohort == cohort]
            check_step(entry, mine, [s for s in base if s.cohort == cohort])
    # The dashboard compares the steps with the baseline from the run alone, and
    # `heldout regress` on the sweep written beside the outputs makes no judge call.
    assert {r.checkpoint for r in _comparison(store, run).table.rows} == {
        "sft",
        "step-2",
        "step-4",
    }
    written = load_sweep(out / "heldout" / "sweep.yaml")
    calls = judge_server.requests
    again_result = RegressionEval(written, store=store, settings=settings).run()
    assert judge_server.requests == calls
    assert {r.checkpoint for r in again_result.table.rows} == {"sft", "step-2", "step-4"}


def echo_model(body: dict[str, Any]) -> str:
    """The served policy names the model it was asked for."""
    return f"{body['model']} says a kind answer"


def test_endpoint_mode_generates_each_save_through_the_server(
    tmp_path: Path, judge_server: OpenAIServer, settings: Settings, store: Store
) -> None:
    sweep = write_sweep(tmp_path, judge_server.base_url)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    with OpenAIServer(responder=echo_model) as policy:
        callback = HeldoutCallback(
            sweep,
            endpoint=f"openai:ckpt-{{step}}@{policy.base_url}",
            max_prompts=2,
            name="dpo-run",
            store=store,
            settings=settings,
        )
        callback.on_train_begin(args, state, control)

        for step in (10, 20):
            state.global_step, state.epoch = step, step / 40
            callback.on_save(args, state, control)
        assert policy.requests == 2 * 4  # no answer of step-10 is reused at step-20

        # At step 30 the policy server fails all three attempts at the first prompt
        # (h1): an error score, never a score.
        evaluation = callback.evaluation
        assert evaluation is not None
        run_id = evaluation.run_id
        state.global_step = 30
        policy.fail_next("500", "500", "500")
        callback.on_save(args, state, control)
        assert callback.reports[-1].generation_failures == 1
        (h1,) = store.scores(
            run_id, checkpoint="step-30", cohort="helpfulness", evaluator="criteria"
        )[:1]
        assert (h1.sample_id, h1.status, h1.error_kind) == ("h1", "error", "generation")
        # A training run resumed from a checkpoint saves step 30 again: only the
        # prompt without an output is asked again.
        policy.reset()
        callback.on_save(args, state, control)
        assert policy.requests == 1

    assert run_id.startswith("train-dpo-run-")
    for step in (10, 20, 30):
        outputs = [s.output for s in store.samples(run_id, checkpoint=f"step-{step}")]
        assert outputs == [f"ckpt-{step} says a kind answer"] * 4
    # Without a trainer, the metrics go to the log history only; every cohort of both
    # evaluators is there.
    entries = {e["step"]: e for e in state.log_history}
    assert [entries[s]["heldout/generation_failures"] for s in (10, 20, 30)] == [0, 0, 0]
    failed = [e for e in state.log_history if e["heldout/generation_failures"] == 1]
    assert [e["step"] for e in failed] == [30]
    assert failed[0]["heldout/helpfulness/criteria/errors"] == 1
    # Once answered, h1's verdict is unreadable: still an error, now of the judge's.
    scores = store.scores(run_id, checkpoint="step-30", evaluator="criteria")
    assert {(s.sample_id, s.error_kind) for s in scores if s.status == "error"} == {
        ("h1", "parse_error")
    }
    # Kind everywhere: better than the baseline on harmlessness, as good on helpfulness.
    for step in (10, 20, 30):
        entry = entries[step]
        assert entry["heldout/harmlessness/criteria"] == 1.0
        assert entry["heldout/harmlessness/criteria/delta"] == 1.0
        assert entry["heldout/helpfulness/criteria"] == 1.0  # h2 alone: h1 is an error
        assert entry["heldout/helpfulness/criteria/delta"] == 0.0
        assert entry["heldout/helpfulness/criteria/errors"] == 1
        assert entry["heldout/all/criteria/eval_fail_rate"] == 0.0
        assert "heldout/harmlessness/toxicity/errors" in entry  # every evaluator
    assert [r.checkpoint for r in callback.reports] == ["step-10", "step-20", "step-30", "step-30"]
    assert callback.reports[-1].generation_failures == 0


def test_a_bad_configuration_fails_before_training(
    tmp_path: Path, judge_server: OpenAIServer, settings: Settings
) -> None:
    sweep = write_sweep(tmp_path, judge_server.base_url)
    with pytest.raises(ConfigError, match=r"only \{step\} and \{checkpoint\}"):
        HeldoutCallback(sweep, endpoint="openai:ckpt-{epoch}@http://127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match=r"no evaluator of type 'refusal'\. Available: criteria"):
        HeldoutCallback(
            sweep,
            evaluators=["refusal"],
            settings=settings,
            name="x",
            folder=tmp_path / "f",
        ).on_train_begin(
            TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[]),
            TrainerState(),
            TrainerControl(),
        )
