"""What the Pareto explorer sends to the browser when a store holds thousands of runs: the chart
keeps every run (WebGL past compression.charts.pareto.WEBGL_FROM) and the frontier is computed
over all of them, but the run pickers, the parallel-coordinates chart and the runs table hold a
bounded part (the frontier, the runs in use, the newest), each saying how many it shows; the CSV
download always has every shown run. 10,000 runs opened in 15-33 s in Chromium before this (a
10,000-line parallel chart, three 10,000-label pickers, a 10,000-row table; docs/benchmarks.md)."""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

PICKER_MAX = 500     # newest runs offered by a run picker (plus the frontier and the runs in use)
PARALLEL_MAX = 1000  # lines in the parallel-coordinates chart (the frontier first, then the newest); the page
#                      folds it, built when opened, past this many runs
TABLE_PAGE = 1000    # rows per page of the runs table


def newest_first(df: pd.DataFrame) -> pd.DataFrame:
    """The runs, newest first (ties: the higher id first)."""
    return df.sort_values(["created", "id"], ascending=False, kind="stable")


def picker_ids(df: pd.DataFrame, *, frontier: Sequence[int] = (), keep: Iterable[int | None] = (),
               limit: int = PICKER_MAX) -> list[int]:
    """The run ids a picker offers, highest first: every run of `df` when there are at most
    `limit`, else the frontier, the runs in `keep` (the selected run, a compared pair) and the
    `limit` newest. Ids not in `df` are left out."""
    ids = [int(i) for i in df["id"]]
    if len(ids) <= limit:
        return sorted(ids, reverse=True)
    present = set(ids)
    chosen = {int(i) for i in frontier if int(i) in present}
    chosen |= {int(i) for i in keep if i is not None and not isinstance(i, str) and int(i) in present}
    chosen |= {int(i) for i in newest_first(df)["id"].iloc[:limit]}
    return sorted(chosen, reverse=True)


def parallel_runs(df: pd.DataFrame, frontier: Sequence[int] = (), limit: int = PARALLEL_MAX) -> pd.DataFrame:
    """At most `limit` rows of `df` for the parallel-coordinates chart: all of them when they fit,
    else the frontier's runs and then the newest, in `df`'s order."""
    if len(df) <= limit:
        return df
    on = df["id"].isin(list(frontier))
    rest = newest_first(df[~on]).index[:max(0, limit - int(on.sum()))]
    return df[on | df.index.isin(rest)]


def table_page(df: pd.DataFrame, page: int = 1, size: int = TABLE_PAGE) -> tuple[pd.DataFrame, int]:
    """Page `page` (from 1; clamped to the pages there are) of the runs, newest first, and the
    number of pages."""
    pages = max(1, -(-len(df) // size))
    page = min(max(1, int(page)), pages)
    return newest_first(df).iloc[(page - 1) * size: page * size], pages


def shown_words(n: int, total: int, what: str) -> str:
    """“1,000 of 10,000 runs” for a caption (the total in full when all are shown)."""
    return f"{total:,} {what}" if n >= total else f"{n:,} of {total:,} {what}"
