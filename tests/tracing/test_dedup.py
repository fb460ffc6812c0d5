"""Near-identical inputs join a cohort once, on SQLite and PostgreSQL; distinct ones all join."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from heldout import ConfigError, Store
from heldout.tracing import (
    CohortRules,
    Dedup,
    cohort_sizes,
    cohort_traces,
    load_cohort_rules,
    refresh_cohorts,
    store_spans,
)
from heldout.tracing._dedup import RECALL, Banding, jaccard, words
from tests.tracing.test_cohorts import NOW, rules, trace

LONG = (
    "Hello, I ordered the large blue enamel kettle from your online shop last Tuesday "
    "and the parcel still has not arrived; can you tell me where it is and when it "
    "will be delivered to my flat?"
)
ONE_WORD = LONG.replace("blue", "green")


def members(store: Store) -> list[str]:
    return sorted(t.trace_id[-2:] for t in cohort_traces(store, "c", limit=1000))


def test_whitespace_case_punctuation_and_one_word_changes_join_once(store: Store) -> None:
    spans = [
        trace(1, LONG, age=timedelta(minutes=5)),
        trace(
            2,
            "  " + LONG.upper().replace(",", "").replace(";", " -- ") + "!!",
            age=timedelta(minutes=4),
        ),
        trace(3, LONG.replace(" ", "\n  "), age=timedelta(minutes=3)),
        trace(4, ONE_WORD, age=timedelta(minutes=2)),
        trace(5, "What time does the shop in Oslo open on Sundays?", age=timedelta(minutes=1)),
    ]
    assert jaccard(words(LONG), words(ONE_WORD)) > 0.9
    result = store_spans(store, spans, rules(), at=NOW)  # dedup: true, similarity 0.9
    assert result.joined == {"c": 2}
    assert members(store) == ["01", "05"]


def test_a_near_duplicate_arriving_later_is_found_among_the_members(store: Store) -> None:
    store_spans(store, [trace(1, LONG, age=timedelta(minutes=9))], rules(), at=NOW)
    later = store_spans(store, [trace(2, ONE_WORD)], rules(), at=NOW)
    assert later.joined == {}
    assert members(store) == ["01"]


def test_the_threshold_decides_and_distinct_inputs_all_join(store: Store) -> None:
    short = "where is my blue kettle order"
    changed = "where is my green kettle order"  # 5 of 7 distinct words shared
    assert jaccard(words(short), words(changed)) == pytest.approx(5 / 7)
    distinct = [
        "How do I reset my password?",
        "Can I pay with a gift card?",
        "Do you ship to Norway?",
        "My kettle arrived broken, what now?",
    ]
    spans = [trace(1, short), trace(2, changed)] + [
        trace(10 + i, text, age=timedelta(seconds=i + 1)) for i, text in enumerate(distinct)
    ]
    store_spans(store, spans, rules(dedup={"similarity": 0.9}), at=NOW)
    assert cohort_sizes(store)[0].members == 6  # 0.71 < 0.9: not near-identical
    refresh_cohorts(store, rules(dedup={"similarity": 0.7}), at=NOW)
    assert cohort_sizes(store)[0].members == 5  # now they are: one of the two leaves
    refresh_cohorts(store, rules(dedup=False), at=NOW)
    assert cohort_sizes(store)[0].members == 6


def test_a_member_leaving_the_window_takes_its_bands_along(store: Store) -> None:
    window = rules(window="1h")
    store_spans(store, [trace(1, LONG, age=timedelta(minutes=50))], window, at=NOW)
    bands = store.transaction(
        "count", lambda c: c.exec_driver_sql("SELECT count(*) FROM cohort_member_bands").scalar()
    )
    assert bands == Banding.for_similarity(0.9).bands
    later = NOW + timedelta(minutes=30)  # the first trace is now 80 minutes old
    assert store_spans(store, [trace(2, ONE_WORD)], window, at=later).joined == {}
    refresh_cohorts(store, window, at=later)
    assert members(store) == ["02"]  # the old one left; its near-duplicate joins now
    left = store.transaction(
        "count",
        lambda c: c.exec_driver_sql(
            f"SELECT count(*) FROM cohort_member_bands WHERE trace_id = '{1:032x}'"
        ).scalar(),
    )
    assert left == 0


def test_dedup_settings_in_the_rules_file(tmp_path: Path) -> None:
    parsed = CohortRules.model_validate(
        {
            "cohorts": [
                {"name": "a"},
                {"name": "b", "dedup": True},
                {"name": "c", "dedup": False},
                {"name": "d", "dedup": {"similarity": 0.75}},
            ]
        }
    )
    assert [r.dedup for r in parsed.cohorts] == [Dedup(), Dedup(), None, Dedup(similarity=0.75)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("cohorts:\n  - name: x\n    dedup:\n      similarity: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: field cohorts\[0\].dedup.similarity"):
        load_cohort_rules(bad)


def pair(
    rng: random.Random, vocabulary: list[str], shared: int, own: int
) -> tuple[frozenset[str], frozenset[str]]:
    words_ = rng.sample(vocabulary, shared + 2 * own)
    common = words_[:shared]
    return (
        frozenset(common + words_[shared : shared + own]),
        frozenset(common + words_[shared + own :]),
    )


@pytest.mark.parametrize(("similarity", "own"), [(0.5, 18), (0.8, 4), (0.9, 2)])
def test_pairs_at_the_threshold_share_a_band_as_often_as_promised(
    similarity: float, own: int
) -> None:
    """The bands miss a pair at the threshold at most about 1 - RECALL of the time,
    and almost never bring up a pair far below it."""
    rng = random.Random(3)
    vocabulary = [f"w{i}" for i in range(5000)]
    banding = Banding.for_similarity(similarity)
    n = 400
    near = [pair(rng, vocabulary, 36, own) for _ in range(n)]
    assert all(jaccard(a, b) >= similarity for a, b in near)
    found = sum(bool(set(banding.hashes(a)) & set(banding.hashes(b))) for a, b in near)
    assert found >= n * RECALL - 3  # a few misses at worst, by the binomial spread
    far = [pair(rng, vocabulary, 6, 30) for _ in range(200)]  # Jaccard 6/66
    brought_up = sum(bool(set(banding.hashes(a)) & set(banding.hashes(b))) for a, b in far)
    expected = 200 * (1 - (1 - (6 / 66) ** banding.rows) ** banding.bands)
    assert expected < 8
    assert brought_up <= 2 * expected + 3
