"""The sweep file: loading, path resolution, and errors that name file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from heldout._errors import ConfigError
from heldout.runner._generate import Sampling
from heldout.sweep import SweepConfig, load_sweep

# Line numbers below refer to this text: keep it in step with the tests.
VALID = """\
name: beta-sweep
dataset: {path: data/prompts.jsonl, cohorts: [helpfulness, regression]}
eval_judge: openai:judge-model
training_judge: openai:train-model
evaluators:
  - {type: criteria, criteria: The answer is correct., cohorts: [regression]}
  - type: custom
    constitution: rules/mine.yaml
  - {type: custom, constitution: default, axes: [honesty]}
baseline: sft
sampling: {max_tokens: 64, temperature: 0.5, seed: 7}
checkpoints:
  - {name: sft, outputs: outputs/sft.jsonl}
  - name: beta-0.1
    endpoint: "openai:policy@http://127.0.0.1:9/v1"
    sampling: {max_tokens: 32, system: Be brief.}
    params: {beta: 0.1, step: 1000, tag: first, final: true}
  - {name: beta-0.3, gguf: ckpt/beta.gguf, params: {beta: 0.3}}
selection:
  objective: {metrics: ["custom:*"]}
  guards: [{metric: criteria, cohorts: [regression], max_drop: 0.02}]
statistics: {confidence: 0.9, n_resamples: 199, correction: bh}
"""


def write(folder: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    return str(info.value)


def test_a_valid_sweep_loads_with_paths_relative_to_the_sweep_file(tmp_path: Path) -> None:
    folder = tmp_path / "sweeps"
    sweep = load_sweep(write(folder, VALID))

    assert sweep.name == "beta-sweep"
    assert sweep.dataset.path == folder / "data/prompts.jsonl"
    assert sweep.dataset.cohorts == ["helpfulness", "regression"]
    sft, beta1, beta3 = sweep.checkpoints
    assert sft.outputs == folder / "outputs/sft.jsonl"
    assert beta3.gguf == folder / "ckpt/beta.gguf"
    # A constitution file resolves; a shipped constitution's name stays a name.
    assert sweep.evaluators[1].constitution == str(folder / "rules/mine.yaml")
    assert sweep.evaluators[2].constitution == "default"
    assert sweep.evaluators[2].axes == ["honesty"]

    assert [c.policy for c in sweep.checkpoints] == [
        None,
        "openai:policy@http://127.0.0.1:9/v1",
        f"local:{folder / 'ckpt/beta.gguf'}",
    ]
    # Scalars keep their YAML types.
    assert beta1.params == {"beta": 0.1, "step": 1000, "tag": "first", "final": True}
    assert sweep.sampling_of(sft) == Sampling(max_tokens=64, temperature=0.5, seed=7)
    assert sweep.sampling_of(beta1) == Sampling(max_tokens=32, system="Be brief.")
    assert sweep.sampling_of(beta3) == sweep.sampling
    assert sweep.selection is not None
    assert sweep.selection.guards[0].max_drop == 0.02
    assert (sweep.statistics.confidence, sweep.statistics.n_resamples) == (0.9, 199)
    assert sweep.statistics.correction == "bh"


def test_absolute_paths_are_kept_and_a_relative_sweep_path_resolves_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = tmp_path / "elsewhere" / "prompts.jsonl"
    write(tmp_path / "sub", VALID.replace("data/prompts.jsonl", str(absolute)))
    monkeypatch.chdir(tmp_path)

    sweep = load_sweep("sub/sweep.yaml")

    assert sweep.dataset.path == absolute
    assert sweep.checkpoints[0].outputs == Path("sub/outputs/sft.jsonl")
    assert sweep.checkpoints[0].outputs.resolve() == tmp_path / "sub/outputs/sft.jsonl"


def test_the_digest_changes_with_any_setting(tmp_path: Path) -> None:
    a = load_sweep(write(tmp_path, VALID, "a.yaml"))
    same = load_sweep(write(tmp_path, VALID, "b.yaml"))
    other = load_sweep(write(tmp_path, VALID.replace("seed: 7", "seed: 8"), "c.yaml"))

    assert a.digest() == same.digest()
    assert a.digest() != other.digest()


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        pytest.param(
            "statistics: {confidence: 0.9,",
            "statistics: {colour: red, confidence: 0.9,",
            22,
            "statistics.colour",
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            "name: beta-sweep\n",
            "name: beta-sweep\nworkerz: 4\n",
            2,
            "workerz",
            "Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "gguf: ckpt/beta.gguf,",
            "gguf: ckpt/beta.gguf, outputs: b.jsonl,",
            18,
            "checkpoints[2]",
            "checkpoint 'beta-0.3' needs exactly one of outputs, endpoint or gguf "
            "(got outputs, gguf)",
            id="two-sources",
        ),
        pytest.param(
            '    endpoint: "openai:policy@http://127.0.0.1:9/v1"\n',
            "",
            14,
            "checkpoints[1]",
            "checkpoint 'beta-0.1' needs exactly one of outputs, endpoint or gguf (got none)",
            id="no-source",
        ),
        pytest.param(
            "baseline: sft",
            "baseline: base",
            10,
            "baseline",
            "baseline 'base' is not a checkpoint. Available: sft, beta-0.1, beta-0.3",
            id="baseline-not-a-checkpoint",
        ),
        pytest.param(
            "{name: beta-0.3,",
            "{name: sft,",
            18,
            "checkpoints[2].name",
            "checkpoint names must be unique; 'sft' is also checkpoints[0]",
            id="duplicate-name",
        ),
        pytest.param(
            "params: {beta: 0.1, step: 1000, tag: first, final: true}",
            "params: {beta: 0.1, step: [1000, 2000]}",
            17,
            "checkpoints[1].params.step",
            "expected a string, number or boolean, got list",
            id="params-value-not-scalar",
        ),
        pytest.param(
            "params: {beta: 0.1, step: 1000, tag: first, final: true}",
            "params: [0.1, 1000]",
            17,
            "checkpoints[1].params",
            "Input should be a valid dictionary",
            id="params-not-a-mapping",
        ),
        pytest.param(
            "{confidence: 0.9,",
            "{confidence: 2,",
            22,
            "statistics.confidence",
            "Input should be less than 1",
            id="confidence-out-of-range",
        ),
        pytest.param(
            "sampling: {max_tokens: 32, system: Be brief.}",
            "sampling: {max_tokens: many}",
            16,
            "checkpoints[1].sampling.max_tokens",
            "Input should be a valid integer, unable to parse string as an integer",
            id="sampling-type",
        ),
        pytest.param(
            "guards: [{metric: criteria, cohorts: [regression], max_drop: 0.02}]",
            "guards:\n    - metric: criteria\n      max_drop: 1.5",
            23,
            "selection.guards[0].max_drop",
            "Input should be less than or equal to 1",
            id="guard-deep-in-the-tree",
        ),
    ],
)
def test_a_schema_error_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))

    assert error_of(path) == f"{path}:{line}: field {field}: {message}"


def test_a_checkpoint_built_in_python_is_checked_too() -> None:
    with pytest.raises(ValueError, match="needs exactly one of outputs, endpoint or gguf"):
        SweepConfig.model_validate(
            {
                "name": "s",
                "dataset": {"path": "p.jsonl"},
                "evaluators": [{"type": "criteria"}],
                "baseline": "a",
                "checkpoints": [{"name": "a", "outputs": "a.jsonl"}, {"name": "b"}],
            }
        )


def test_bad_yaml_names_the_line_of_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("baseline: sft", "baseline: [sft"))

    message = error_of(path)

    assert message.startswith(f"{path}:11: not valid YAML:")


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")

    assert error_of(path).startswith(f"{path}:1: a sweep file is a mapping")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    message = error_of(path)

    assert re.fullmatch(rf"{re.escape(str(path))}: cannot read the sweep file: .*", message)
    assert "No such file" in message


REPLICAS = """\
  - name: beta-0.1
    endpoint: "openai:policy@http://127.0.0.1:9/v1"
"""


def test_a_checkpoint_served_by_replicas_lists_their_endpoints(tmp_path: Path) -> None:
    urls = ["http://gpu-1:8000/v1", "http://gpu-2:8000/v1"]
    served = "    endpoint: [" + ", ".join(f'"openai:policy@{u}"' for u in urls) + "]\n"
    sweep = load_sweep(write(tmp_path, VALID.replace(REPLICAS, "  - name: beta-0.1\n" + served)))

    beta1 = sweep.checkpoints[1]
    assert beta1.replicas == [f"openai:policy@{u}" for u in urls]
    assert beta1.policy == f"openai:policy@{urls[0]}"
    # A single endpoint, as before, is one replica.
    assert load_sweep(write(tmp_path, VALID, "old.yaml")).checkpoints[1].replicas == [
        "openai:policy@http://127.0.0.1:9/v1"
    ]


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ('["openai:a@http://h1/v1", "openai:b@http://h2/v1"]', "replicas must serve one model"),
        ('["openai:a@http://h1/v1", "openai:a"]', "each replica needs a base URL of its own"),
        ('["openai:a@http://h1/v1", "openai:a@http://h1/v1"]', "a base URL of its own"),
        ("[]", "endpoint lists no replica"),
    ],
)
def test_replicas_that_are_not_one_model_at_distinct_urls_are_refused(
    tmp_path: Path, endpoints: str, message: str
) -> None:
    path = write(
        tmp_path, VALID.replace(REPLICAS, f"  - name: beta-0.1\n    endpoint: {endpoints}\n")
    )
    error = error_of(path)
    assert error.startswith(f"{path}:14: field checkpoints[1]: ")
    assert message in error
