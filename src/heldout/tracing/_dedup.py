"""Near-identical inputs: word-set Jaccard similarity, found through MinHash LSH bands.

Two inputs are near-identical when the sets of words of their normalised texts (see
:func:`~heldout.tracing.normalise`: case, punctuation, whitespace and numbers folded)
overlap by at least the cohort's ``similarity`` (Jaccard: shared words over all
words). Word sets ignore word order and repeats on purpose: a cohort wants one of each
*kind* of request, and "refund order 12 please" is the same kind as "please refund
order 97".

Comparing a new input with every member of a capped cohort would cost O(members) per
trace. Instead each member keeps a few band hashes of its MinHash signature (locality
sensitive hashing): two inputs share a band hash with a probability that rises
steeply with their similarity, so the store finds the few members worth comparing by
an indexed lookup, and only those are compared exactly. The bands are chosen per
similarity so that a pair exactly at the threshold is found with probability at least
:data:`RECALL`; pairs above it more surely still.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from heldout.tracing._group import normalise

NUM_PERM = 128
"""Hash functions in a MinHash signature."""
RECALL = 0.995
"""The least probability that a pair exactly at the similarity threshold shares a band."""

# Fixed, so signatures (and the band hashes stored with members) never change between
# processes or releases: changing them would hide every stored member from dedup.
_RNG = np.random.default_rng(0x4E4541524455)
_MULTIPLIERS = _RNG.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_OFFSETS = _RNG.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)


def words(text: str | None) -> frozenset[str]:
    """The set of words of ``text`` once normalised; empty without text."""
    return frozenset(normalise(text).split()) if text else frozenset()


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared words over all words; 1.0 for two empty sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _token_hashes(tokens: Iterable[str]) -> np.ndarray:
    values = [
        int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "big")
        for t in tokens
    ]
    return np.array(values, dtype=np.uint64)


def signature(tokens: frozenset[str]) -> np.ndarray:
    """The MinHash signature of a non-empty word set: NUM_PERM 32-bit minima.

    Each hash function is multiply-shift, ``(a*x + b) mod 2**64 >> 32`` with an odd
    ``a``; array arithmetic on uint64 wraps modulo 2**64 as the scheme needs.
    """
    hashed = _token_hashes(sorted(tokens))
    mixed = _MULTIPLIERS[:, None] * hashed[None, :] + _OFFSETS[:, None]
    result: np.ndarray = (mixed >> np.uint64(32)).min(axis=1)
    return result


@dataclass(frozen=True)
class Banding:
    """How a signature is cut into bands for one similarity threshold.

    Attributes:
        similarity: The Jaccard threshold of the cohort.
        rows: Signature values per band.
        bands: Bands per signature.
    """

    similarity: float
    rows: int
    bands: int

    @classmethod
    def for_similarity(cls, similarity: float) -> Banding:
        """The banding with the most rows per band (fewest needless comparisons)
        that still finds a pair at ``similarity`` with probability :data:`RECALL`."""
        return _banding(round(similarity, 6))

    def hashes(self, tokens: frozenset[str]) -> list[int]:
        """One signed 64-bit hash per band; none for an empty word set.

        The banding is part of each hash: a member stored under another similarity
        never matches, so it cannot be compared under the wrong threshold.
        """
        if not tokens:
            return []
        values = signature(tokens)
        out = []
        for band in range(self.bands):
            chunk = values[band * self.rows : (band + 1) * self.rows].tobytes()
            digest = hashlib.blake2b(
                chunk, digest_size=8, person=f"{self.rows}:{band}".encode()[:16]
            )
            out.append(int.from_bytes(digest.digest(), "big", signed=True))
        return out


@lru_cache(maxsize=64)
def _banding(similarity: float) -> Banding:
    best = Banding(similarity, 1, NUM_PERM)
    for rows in range(1, NUM_PERM + 1):
        bands = NUM_PERM // rows
        found = 1.0 - (1.0 - similarity**rows) ** bands
        if found >= RECALL:
            best = Banding(similarity, rows, bands)
    return best
