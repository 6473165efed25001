"""What assets hand the IO manager, and the one flow of a table updated in place."""

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import dagster as dg

from marketing_ml.storage.engine import tables_for


@dataclass(frozen=True)
class Sql:
    """An asset output that is a query: the IO manager materializes it in-engine, no round trip."""

    query: str
    order_by: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class ScoredRows:
    """An asset output computed in Python from a query's rows, batch by batch (model scoring):
    DuckDB fetches the rows and calls `score` once; Spark calls it on its executors
    (`mapInPandas`), so the rows never gather in one process. `score` maps a frame of the
    query's rows to a frame of `columns` ((name, DuckDB type) pairs), row for row."""

    query: str
    score: Callable
    columns: tuple[tuple[str, str], ...]
    order_by: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Table:
    """An asset input that names an upstream table instead of loading it."""

    name: str

    def __str__(self) -> str:
        return self.name


FULL_LOAD_TAG = "marketing_ml/full_load"
"""Run tag that makes incrementally written tables rebuild in full (the full_refresh job sets it)."""


def full_load_requested(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(FULL_LOAD_TAG) == "true"


def query_id(query: str) -> str:
    """Names the SQL a table was built with, for the state it records: other SQL, a full build."""
    return hashlib.sha256(query.encode()).hexdigest()[:16]


class TableWriter(ABC):
    """An asset output that writes its own table. `write` must leave the previous version intact
    when it fails, and returns the table's metadata."""

    @abstractmethod
    def write(self, connection, schema: str, table: str) -> dict: ...


@dataclass(frozen=True)
class Update:
    """What one write of an incrementally written table does. `apply(connection, name)` changes
    the rows, inside the transaction that then records `state` (None: record nothing, so the
    next write builds in full); no `apply`: nothing to do. `load` says what was done."""

    load: str
    apply: Callable | None = None
    state: dict | None = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IncrementalTable(TableWriter):
    """A table brought up to date in place rather than rebuilt (appending a day, re-cleaning the
    keys new rows touch), in the flow every such table shares: read what it recorded about its
    inputs when last written (its state; none after a full-load request, or when the table no
    longer holds the rows it recorded), let `plan` choose a full build, nothing, or an update in
    place, and apply it with its new state (and row count) in one transaction, so a failure
    leaves the previous rows and the state that describes them."""

    full_load: bool = field(default=False, kw_only=True)
    needs_updates_in_place: ClassVar[bool] = True
    """Whether `plan` updates rows in place (delete, insert, update). On an engine that does not
    (Spark's Parquet tables), such a table is built in full on every write."""

    @abstractmethod
    def plan(self, connection, name: str, built: dict) -> Update:
        """The write from the table's recorded state `built` ({}: build in full)."""

    def write(self, connection, schema: str, table: str) -> dict:
        name = f"{schema}.{table}"
        tables = tables_for(connection)
        built = {} if self.full_load else tables.table_state(connection, schema, table) or {}
        if built and built.get("rows") != tables.row_count(connection, name):
            built = {}
        if self.needs_updates_in_place and not tables.updates_in_place:
            built = {}
        update = self.plan(connection, name, built)
        if update.apply is not None:
            with tables.transaction(connection):
                update.apply(connection, name)
                if update.state is not None:
                    state = {**update.state, "rows": tables.row_count(connection, name)}
                    tables.set_table_state(connection, schema, table, state)
        return {**update.metadata, "load": update.load}


def full_build(query: str, order_by: Sequence[str] = ()) -> Callable:
    """An `Update.apply` that replaces the whole table with `query`."""
    return lambda connection, name: tables_for(connection).create_table_as(
        connection, name, query, order_by
    )


@dataclass(frozen=True)
class RecomputedFromChangedDays(IncrementalTable):
    """A table with a `date` column whose rows read only their own and earlier days, brought up
    to date by recomputing only from the first day whose inputs changed (after a day is
    appended: that day).

    The table records a fingerprint of each day's rows of its `dated_inputs` and one of each
    `undated_inputs` query. Rows dated before the first changed day are kept; the rest are
    replaced by `query(since)`, which gives exactly what a full build gives. Another query,
    other undated inputs or rows missing from the table mean a full build.
    """

    query: Callable[[str | None], str]
    """The table's SQL: every row for None, the rows dated on or after an ISO date otherwise."""
    dated_inputs: tuple[str, ...]
    undated_inputs: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()

    def plan(self, connection, name: str, built: dict) -> Update:
        query = self.query(None)
        if not tables_for(connection).updates_in_place:
            return Update("full build", full_build(query, self.order_by))
        state = {
            "query": query_id(query),
            "undated": [
                connection.execute(
                    f"SELECT CAST(bit_xor(hash(input_rows)) AS VARCHAR) FROM ({sql}) AS input_rows"
                ).fetchone()[0]
                for sql in self.undated_inputs
            ],
            "days": dict(connection.execute(self._day_fingerprints_sql()).fetchall()),
        }
        if not built or (built["query"], built["undated"]) != (state["query"], state["undated"]):
            return Update("full build", full_build(query, self.order_by), state)
        changed = {
            day
            for day in state["days"].keys() | built["days"].keys()
            if state["days"].get(day) != built["days"].get(day)
        }
        if not changed:
            return Update("unchanged: no day of its inputs changed")
        since = min(changed)
        ordering = f"\nORDER BY {', '.join(self.order_by)}" if self.order_by else ""

        def recompute(connection, name: str) -> None:
            connection.execute(f"DELETE FROM {name} WHERE date >= DATE '{since}'")
            connection.execute(f"INSERT INTO {name} BY NAME {self.query(since)}{ordering}")

        return Update(
            f"recomputed the days from {since} ({len(changed)} changed)", recompute, state
        )

    def _day_fingerprints_sql(self) -> str:
        """Per day, a hash of every dated input's rows of that day (each input tagged, so equal
        rows in two inputs do not cancel out)."""
        per_input = "\nUNION ALL\n".join(
            f"SELECT CAST(date AS VARCHAR) AS day, hash({position}, bit_xor(hash(input_rows))) "
            f"AS fingerprint FROM {table} AS input_rows GROUP BY date"
            for position, table in enumerate(self.dated_inputs)
        )
        return (
            "SELECT day, CAST(bit_xor(fingerprint) AS VARCHAR) "
            f"FROM ({per_input}) AS fingerprints GROUP BY day"
        )
