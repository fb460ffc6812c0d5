"""Dataset: an immutable, ordered collection of samples with unique ids."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from heldout._errors import DataError
from heldout.data._loaders import (
    RowReader,
    StrPath,
    as_object,
    iter_samples,
    read_csv,
    read_jsonl,
    read_parquet,
    samples_from_rows,
)
from heldout.data._mapping import ColumnMapping
from heldout.data._sample import Sample

_FINGERPRINT_VERSION = b"heldout.dataset/1\n"


if TYPE_CHECKING:
    from heldout.evaluators import Evaluator
    from heldout.runner import EvaluationResult
    from heldout.store import Store


class Dataset(Sequence[Sample]):
    """An immutable, ordered collection of samples, indexed by position and by id.

    Build one with a loader (:meth:`load`, :meth:`from_jsonl`, :meth:`from_csv`,
    :meth:`from_parquet`) or from memory (:meth:`from_samples`, :meth:`from_records`).
    Methods that change something (:meth:`filter`, :meth:`with_outputs`) return a new
    Dataset. Slicing (``dataset[:10]``) also returns a Dataset.

    Args:
        samples: The samples, in order; ids must be unique.
        name: A label for reports (loaders use the file's stem).

    Raises:
        DataError: Two samples share an id.
    """

    __slots__ = ("_by_id", "_cohorts", "_name", "_samples")

    def __init__(self, samples: Iterable[Sample], *, name: str = "dataset") -> None:
        items = tuple(samples)
        by_id: dict[str, int] = {}
        for position, sample in enumerate(items):
            if not isinstance(sample, Sample):
                raise TypeError(f"a Dataset holds Samples, got {type(sample).__name__}")
            first = by_id.setdefault(sample.id, position)
            if first != position:
                raise DataError(
                    f"dataset {name!r}: duplicate id {sample.id!r} at positions {first + 1} "
                    f"and {position + 1}; ids must be unique within a dataset",
                    field="id",
                )
        self._samples = items
        self._by_id = by_id
        self._cohorts = tuple(sorted({sample.cohort for sample in items}))
        self._name = name

    # -- loaders -------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: StrPath,
        *,
        mapping: ColumnMapping | None = None,
        cohort: str | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Load a file, choosing the reader by suffix.

        ``.jsonl`` and ``.ndjson`` are JSON lines; ``.json`` is a JSON array of objects
        or JSON lines; ``.csv`` has a header row (an empty cell is no value);
        ``.parquet`` may hold nested structs (address them with dotted columns).

        Args:
            path: The file.
            mapping: Which column holds which field (default: the Sample field names).
            cohort: The cohort for rows that name none (default ``"default"``).
            name: The dataset's name (default: the file's stem).

        Raises:
            DataError: The file is missing, empty, of an unknown type or not valid in
                its format; a row is not an object, lacks ``id`` or ``input``, has a
                value of the wrong type or an empty id; or an id repeats. The message
                names the file, the line (or row) and the field.
        """
        return cls._read(path, None, mapping, cohort, name)

    @classmethod
    def from_jsonl(
        cls,
        path: StrPath,
        *,
        mapping: ColumnMapping | None = None,
        cohort: str | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Load a JSON lines file, one object per line, whatever its suffix.

        Arguments and errors as in :meth:`load`.
        """
        return cls._read(path, read_jsonl, mapping, cohort, name)

    @classmethod
    def from_csv(
        cls,
        path: StrPath,
        *,
        mapping: ColumnMapping | None = None,
        cohort: str | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Load a CSV file with a header row, whatever its suffix.

        Errors name the physical line where the record starts (the header is line 1).
        Arguments and errors as in :meth:`load`.
        """
        return cls._read(path, read_csv, mapping, cohort, name)

    @classmethod
    def from_parquet(
        cls,
        path: StrPath,
        *,
        mapping: ColumnMapping | None = None,
        cohort: str | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Load a Parquet file, whatever its suffix.

        Errors name the 1-based row number as the line. Arguments and errors as in
        :meth:`load`.
        """
        return cls._read(path, read_parquet, mapping, cohort, name)

    @classmethod
    def _read(
        cls,
        path: StrPath,
        reader: RowReader | None,
        mapping: ColumnMapping | None,
        cohort: str | None,
        name: str | None,
    ) -> Dataset:
        samples = iter_samples(path, mapping=mapping, cohort=cohort, reader=reader)
        return cls(samples, name=name if name is not None else Path(path).stem)

    @classmethod
    def from_samples(cls, samples: Iterable[Sample], *, name: str = "dataset") -> Dataset:
        """A dataset of ``samples``, in order.

        Raises:
            DataError: Two samples share an id.
        """
        return cls(samples, name=name)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        mapping: ColumnMapping | None = None,
        cohort: str | None = None,
        name: str = "records",
    ) -> Dataset:
        """A dataset of in-memory rows (dicts), read like the rows of a file.

        Errors name ``<records>`` as the file and the 1-based record number as the
        line. The records are not modified.

        Raises:
            DataError: As in :meth:`load`, except that no records is allowed.
        """
        label = "<records>"
        rows = (
            (number, as_object(record, label, number))
            for number, record in enumerate(records, start=1)
        )
        samples = samples_from_rows(
            rows,
            mapping if mapping is not None else ColumnMapping(),
            cohort=cohort,
            label=label,
            empty=None,
        )
        return cls(samples, name=name)

    # -- the collection ------------------------------------------------------------

    @property
    def name(self) -> str:
        """A label for reports."""
        return self._name

    @property
    def ids(self) -> tuple[str, ...]:
        """The sample ids, in order."""
        return tuple(sample.id for sample in self._samples)

    @property
    def cohorts(self) -> tuple[str, ...]:
        """The distinct cohort names, sorted."""
        return self._cohorts

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> Dataset: ...

    def __getitem__(self, index: int | slice) -> Sample | Dataset:
        if isinstance(index, slice):
            return Dataset(self._samples[index], name=self._name)
        return self._samples[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self._name == other._name and self._samples == other._samples

    __hash__ = None  # type: ignore[assignment]  # equal by content, and content is not hashable

    def __repr__(self) -> str:
        return f"Dataset(name={self._name!r}, samples={len(self)}, cohorts={list(self._cohorts)})"

    def by_id(self, sample_id: str) -> Sample:
        """The sample with id ``sample_id``.

        Raises:
            DataError: No sample has that id.
        """
        position = self._by_id.get(sample_id)
        if position is None:
            raise DataError(f"dataset {self._name!r} has no sample with id {sample_id!r}")
        return self._samples[position]

    # -- new datasets --------------------------------------------------------------

    def filter(self, *, cohorts: str | Collection[str]) -> Dataset:
        """The samples of the given cohorts, in their order.

        Raises:
            DataError: A cohort is not in this dataset (the message lists those that are).
        """
        wanted = {cohorts} if isinstance(cohorts, str) else set(cohorts)
        unknown = sorted(wanted.difference(self._cohorts))
        if unknown:
            available = ", ".join(repr(name) for name in self._cohorts) or "none"
            raise DataError(
                f"dataset {self._name!r} has no cohort {unknown[0]!r}. Available: {available}",
                field="cohort",
            )
        return Dataset((s for s in self._samples if s.cohort in wanted), name=self._name)

    def with_outputs(self, outputs: Mapping[str, str], /) -> Dataset:
        """A copy with the policy outputs of some samples set, by id.

        Samples whose id is not in ``outputs`` keep their output.

        Raises:
            DataError: An id is not in this dataset, or an output is not a string.
        """
        unknown = [sample_id for sample_id in outputs if sample_id not in self._by_id]
        if unknown:
            raise DataError(
                f"dataset {self._name!r} has no sample with id {unknown[0]!r} "
                f"({len(unknown)} unknown id(s)); outputs must be keyed by sample id",
                field="id",
            )
        for sample_id, output in outputs.items():
            if not isinstance(output, str):
                raise DataError(
                    f"output for id {sample_id!r} must be a string, got {type(output).__name__}",
                    field="output",
                )
        return Dataset(
            (
                s.model_copy(update={"output": outputs[s.id]}) if s.id in outputs else s
                for s in self._samples
            ),
            name=self._name,
        )

    # -- identity and export -------------------------------------------------------

    def fingerprint(self) -> str:
        """The sha256 of the canonical content of the samples, stable across processes.

        Every field counts (metadata included); the name and the row order do not, so
        a shuffled copy of a file is the same held-out set.
        """
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        for sample in sorted(self._samples, key=lambda s: s.id):
            canonical = json.dumps(
                sample.model_dump(mode="json"),
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            )
            digest.update(canonical.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    def add_evaluation(
        self,
        *evaluators: Evaluator,
        judge: str | None = None,
        store: Store | None = None,
        run_id: str | None = None,
        progress: bool = True,
    ) -> EvaluationResult:
        """Run every evaluator over every row, concurrently, storing each score as it comes.

        Rerunning the same evaluation resumes it: finished scores are not recomputed
        and cached judge replies are not paid for again.

        Args:
            *evaluators: The evaluators, e.g. ``Groundedness(), Toxicity()``.
            judge: The judge spec for evaluators without their own; default the
                configured eval judge (the embedded local judge when none is set).
            store: Where scores go; default the configured store.
            run_id: The run to write or resume; default derived from the inputs.
            progress: Draw a progress bar.

        Returns:
            Per-row scores, per-cohort aggregates, and ``to_pandas()``.
        """
        from heldout._sync import run_sync
        from heldout.runner import evaluate_dataset

        return run_sync(
            evaluate_dataset(
                self,
                list(evaluators),
                judge=judge,
                store=store,
                run_id=run_id,
                name=self.name,
                progress=progress,
            )
        )

    async def aadd_evaluation(
        self,
        *evaluators: Evaluator,
        judge: str | None = None,
        store: Store | None = None,
        run_id: str | None = None,
        progress: bool = True,
    ) -> EvaluationResult:
        """The async twin of :meth:`add_evaluation`."""
        from heldout.runner import evaluate_dataset

        return await evaluate_dataset(
            self,
            list(evaluators),
            judge=judge,
            store=store,
            run_id=run_id,
            name=self.name,
            progress=progress,
        )

    def to_jsonl(self, path: StrPath) -> None:
        """Write one JSON object per sample, in order; :meth:`load` reads it back.

        Metadata is written as a ``metadata`` object, which the default mapping
        unpacks again. Metadata values that are not JSON (dates from Parquet) are
        written in their JSON form (ISO strings).

        Raises:
            DataError: The file cannot be written.
        """
        try:
            with Path(path).open("w", encoding="utf-8", newline="\n") as handle:
                for sample in self._samples:
                    handle.write(sample.model_dump_json())
                    handle.write("\n")
        except OSError as exc:
            raise DataError(f"cannot write file: {exc.strerror}", path=os.fspath(path)) from exc
