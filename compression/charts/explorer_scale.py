"""What the Pareto explorer sends to the browser when a store holds thousands of runs: the frontier
is computed over all of them; the chart draws DRAWN_MAX of them (every frontier, starred, baseline
and selected run and a fixed sample of the rest; "Draw all" draws each, by WebGL past
compression.charts.pareto.WEBGL_FROM), and the run pickers, the parallel-coordinates chart and the runs table hold a
bounded part (the frontier, the runs in use, the newest), each saying how many it shows; the CSV
download always has every shown run. 10,000 runs opened in 15-33 s in Chromium before this (a
10,000-line parallel chart, three 10,000-label pickers, a 10,000-row table; docs/benchmarks.md)."""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

PICKER_MAX = 500     # newest runs offered by a run picker (plus the frontier and the runs in use)
PARALLEL_MAX = 1000  # lines in the parallel-coordinates chart (the frontier first, then the newest); the page
#                      folds that chart, built when opened (its WebGL took 1.2-2 s of a page's open without a GPU)
TABLE_PAGE = 1000    # rows per page of the runs table
DRAWN_MAX = 1000     # markers the Pareto chart draws unless "Draw all" is on: up to 1,000 are SVG and the page
#                      opened in 1.8 s; 2,000 (WebGL) took 2.4 s and 10,000 3.1-3.4 s (Chromium without a GPU)


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


def drawn_runs(df: pd.DataFrame, frontier: Sequence[int] = (), keep: Iterable[int | None] = (),
               limit: int = DRAWN_MAX, seed: int = 0) -> pd.DataFrame:
    """The rows of `df` the chart draws: all when they fit, else every baseline, frontier run,
    starred run and run in `keep` (the selected one, its pipeline), and a fixed random sample of the
    rest (seeded: the same runs on every rerun), at most `limit` in all unless the must-haves are
    more; in `df`'s order."""
    if len(df) <= limit:
        return df
    keep_ids = set(frontier) | {int(i) for i in keep if i is not None}
    must = df["id"].isin(keep_ids) | (df["method"] == "baseline") | df["starred"].astype(bool)
    rest = df[~must]
    room = max(0, limit - int(must.sum()))
    sample = rest.sample(n=room, random_state=seed).index if room < len(rest) else rest.index
    return df[must | df.index.isin(sample)]


def table_page(df: pd.DataFrame, page: int = 1, size: int = TABLE_PAGE) -> tuple[pd.DataFrame, int]:
    """Page `page` (from 1; clamped to the pages there are) of the runs, newest first, and the
    number of pages."""
    pages = max(1, -(-len(df) // size))
    page = min(max(1, int(page)), pages)
    return newest_first(df).iloc[(page - 1) * size: page * size], pages


def shown_words(n: int, total: int, what: str) -> str:
    """“1,000 of 10,000 runs” for a caption (the total in full when all are shown)."""
    return f"{total:,} {what}" if n >= total else f"{n:,} of {total:,} {what}"
