"""Schemathesis hooks for tests/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

OpenAPI cannot relate one parameter to another, and mirato's API has three such rules, stated in
words in /api/openapi.json: `from` is not after `to`; each KPI takes its own breakdowns (the
operation's `x-breakdowns`); `a` and `b` of /api/evaluation are subgroups present in the data.
Valid-data cases are kept within these rules, so that the `positive_data_acceptance` check does
not count the API's 400 for breaking one of them as refusing valid data. Invalid-data cases are
left as generated.

The coverage phase also tries every region (40 spellings) and every province (107) on every
route that takes them. On /api/kpi/{id} a query costs tens of milliseconds and every value is
kept; on /api/evaluation, /export/cohort.parquet and /report/anpal one costs 0.2 to 2 seconds
(each computes several KPIs) and the values go through the same check, so there the coverage
phase keeps every eighth value of each list, and every spelling with a character other than a
letter or a digit. The fuzzing phase still draws from all of them everywhere.
"""

import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase

# Routes where one valid request computes several KPIs.
COSTLY = {"/api/evaluation", "/export/cohort.parquet", "/report/anpal"}


def _is_positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def _sampled(case, name):
    """The values of list `name` the coverage phase keeps on a costly route."""
    cache = _SAMPLES.setdefault(id(case.operation.schema), {})
    if name not in cache:
        parameter = case.operation.schema.raw_schema["components"]["parameters"][name]
        values = parameter["schema"]["items"]["enum"]
        cache[name] = {v for i, v in enumerate(values) if i % 8 == 0 or not v.isalnum()}
    return cache[name]


_SAMPLES = {}


@schemathesis.hook
def filter_case(context, case):
    meta = getattr(case, "meta", None)
    if (
        meta is None
        or meta.phase.name != TestPhase.COVERAGE
        or not _is_positive(case)
        or case.operation.path not in COSTLY
        or not isinstance(case.query, dict)
    ):
        return True
    for name in ("region", "province"):
        values = _items(case.query.get(name))
        if values and any(v and v not in _sampled(case, name) for v in values):
            return False
    return True


def _items(value):
    """A list parameter as generated: a list, or already joined with commas."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return value.split(",")
    return None


@schemathesis.hook
def map_case(context, case):
    if not _is_positive(case) or not isinstance(case.query, dict):
        return case
    query = case.query
    start, end = query.get("from"), query.get("to")
    if isinstance(start, str) and start:
        if not isinstance(end, str) or not end:
            # The default `to` is the latest event's date: a later `from` is a 400.
            query["to"] = start
        elif start > end:
            query["from"], query["to"] = end, start
    path = case.operation.path
    by = _items(query.get("by"))
    if path == "/api/kpi/{id}" and by is not None:
        allowed = case.operation.definition.raw.get("x-breakdowns", {})
        kpi = (case.path_parameters or {}).get("id")
        if kpi in allowed:
            kept = [b for b in by if b in allowed[kpi]]
            query["by"] = kept if isinstance(query["by"], list) else ",".join(kept)
    if path == "/api/evaluation":
        query.pop("a", None)
        query.pop("b", None)
    return case
