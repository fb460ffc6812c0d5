"""Reading samples back: every field, the checkpoint and the row key, on both backends."""

from __future__ import annotations

from heldout import Sample
from heldout.store import Store, StoredSample, sample_key

RUN = "run-1"


def test_samples_round_trip_every_field(store: Store) -> None:
    store.begin_run(RUN, name="test", kind="eval", config={})
    full = Sample(
        id="q1",
        cohort="honesty",
        input="What dose?",
        output="<b>50 mg</b> daily",
        context="Metoprolol 50 mg daily.",
        reference="50 mg",
        metadata={"labels": ["a", "é"], "n": {"deep": 1.5}},
    )
    bare = Sample(id="q2", input="Hi")
    store.put_samples(RUN, [bare, full])

    assert store.samples(RUN) == [
        StoredSample(**full.model_dump(), checkpoint=None, sample_key="q1"),
        StoredSample(**bare.model_dump(), checkpoint=None, sample_key="q2"),
    ]
    assert store.samples("no-such-run") == []


def test_samples_are_keyed_and_filtered_by_checkpoint(store: Store) -> None:
    store.begin_run(RUN, name="test", kind="regress", config={})
    store.begin_run("other", name="test", kind="regress", config={})
    for checkpoint in ("sft", "rlaif"):
        rows = [Sample(id=f"q{i}", input=f"q{i}", output=f"{checkpoint}-{i}") for i in range(3)]
        store.put_samples(RUN, rows, checkpoint=checkpoint)
    store.put_samples("other", [Sample(id="q0", input="x")], checkpoint="sft")

    every = store.samples(RUN)
    assert [s.sample_key for s in every] == [
        sample_key(f"q{i}", cp) for cp in ("rlaif", "sft") for i in range(3)
    ]
    sft = store.samples(RUN, checkpoint="sft")
    assert [(s.id, s.checkpoint, s.output) for s in sft] == [
        ("q0", "sft", "sft-0"),
        ("q1", "sft", "sft-1"),
        ("q2", "sft", "sft-2"),
    ]
    assert store.samples(RUN, checkpoint="missing") == []


def test_a_replaced_sample_reads_back_replaced(store: Store) -> None:
    store.begin_run(RUN, name="test", kind="eval", config={})
    store.put_samples(RUN, [Sample(id="q", input="x", output="old")])
    store.put_samples(RUN, [Sample(id="q", input="x", output="new\x00")])
    (stored,) = store.samples(RUN)
    # PostgreSQL text cannot hold NUL: both backends store U+FFFD instead.
    assert stored.output == "new\ufffd"
