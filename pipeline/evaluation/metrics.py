"""Per-item scores by target kind: what `evaluated_model` measures each model on.

Every scorer returns `ItemScores`: one value per evaluation item for each metric (aligned with the
inputs), so the paired bootstrap in `pipeline.evaluation.stats` can resample items, and
`aggregate` turns them into overall and per-task means. All values are floats in 0..1 except
`length_ratio` and the margins; higher is better for every metric named in `PRIMARY_METRIC`.

| kind         | scorer                              | metrics (primary first)                                              |
|--------------|-------------------------------------|----------------------------------------------------------------------|
| `json`       | `score_json`                        | section_accuracy, section_f1, schema_valid, parses                    |
| `text`       | `score_text`                        | chrf (sacrebleu's sentence chrF / 100), length_ratio                 |
| `preference` | `score_preferences` (log-probs)     | preference_accuracy, margin                                          |
|              | `score_preferences_by_similarity`   | preference_accuracy, similarity_margin, chrf_chosen (hosted models)  |
| `ranking`    | `score_rankings`                    | ndcg@10, mrr@10, accuracy@1 (sentence-transformers' IR conventions)  |

Bad input raises `ValueError` naming the items; nothing is dropped silently. Heavy libraries
(sacrebleu, jsonschema, numpy) are imported inside the functions.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

PAGE_SCHEMA_FILE = Path(__file__).with_name("page_schema.json")

#: the metric the promotion gates compare, per kind (every one is higher-is-better, in 0..1)
PRIMARY_METRIC = {
    "json": "section_accuracy",
    "text": "chrf",
    "preference": "preference_accuracy",
    "ranking": "ndcg@10",
}
#: a preference margin (or similarity margin) whose absolute value is at most this is a tie
TIE_EPSILON = 1e-12


@dataclass(frozen=True)
class ItemScores:
    """Per-item values of each metric for one model on one evaluation set.

    `values[metric][i]` is item i's value; `problems[i]` says why item i failed (not JSON, which
    schema rule, ...) or is None. `kind` names the scorer; `primary` the metric the gates compare.
    """

    kind: str
    values: Mapping[str, tuple[float, ...]]
    problems: tuple[str | None, ...] = field(default=())

    def __post_init__(self) -> None:
        lengths = {metric: len(vals) for metric, vals in self.values.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every metric needs one value per item; lengths differ: {lengths}")
        if self.problems and len(self.problems) != self.n:
            raise ValueError(f"{len(self.problems)} problems for {self.n} items")

    @property
    def n(self) -> int:
        return len(next(iter(self.values.values()), ()))

    @property
    def primary(self) -> str:
        return PRIMARY_METRIC[self.kind] if self.kind in PRIMARY_METRIC else next(iter(self.values))

    def __getitem__(self, metric: str) -> tuple[float, ...]:
        if metric not in self.values:
            raise KeyError(f"no metric {metric!r} in {self.kind} scores; there are: {', '.join(self.values)}")
        return self.values[metric]

    def means(self) -> dict[str, float]:
        return {metric: _mean(vals) for metric, vals in self.values.items()}


@dataclass(frozen=True)
class Aggregate:
    """Means of each metric over all items and per task, with the item counts."""

    overall: dict[str, float]
    per_task: dict[str, dict[str, float]]
    n: int
    n_per_task: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "per_task": self.per_task, "n": self.n, "n_per_task": self.n_per_task}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _same_length(**columns: Sequence[Any]) -> int:
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs must be aligned item by item; lengths differ: {lengths}")
    return next(iter(lengths.values()), 0)


def _item_list(indices: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


# ------------------------------------------------------------------------------------ JSON targets


@lru_cache(maxsize=1)
def page_schema() -> dict[str, Any]:
    """The page-builder page schema (`page_schema.json` beside this module)."""
    return json.loads(PAGE_SCHEMA_FILE.read_text(encoding="utf-8"))


def parse_json(text: str) -> tuple[Any, str | None]:
    """`(value, None)` when `text` is one JSON document (surrounding white space allowed), else `(None, why)`.

    Strict on purpose: a product that asked for JSON cannot use an answer wrapped in prose or a
    code fence, so those count as not parsing.
    """
    if not isinstance(text, str):
        return None, f"not JSON: a {type(text).__name__}, not text"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _validators(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Validators for the whole schema and, where the schema defines them, for a page and a section."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    out = {"any": Draft202012Validator(schema)}
    defs = schema.get("$defs", {})
    for name in ("page", "section"):
        if name in defs:
            rest = {key: value for key, value in schema.items() if key not in ("oneOf", "anyOf")}
            out[name] = Draft202012Validator({**rest, "$ref": f"#/$defs/{name}"})
    return out


def _shape(value: Any) -> str:
    """'page' (has sections), 'section' (has a type), or 'any'."""
    if isinstance(value, dict) and "sections" in value:
        return "page"
    if isinstance(value, dict) and "type" in value:
        return "section"
    return "any"


def _schema_problem(validator: Any, value: Any) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"schema: {error.message} at {where}"


def _section_types(value: Any) -> list[str]:
    if _shape(value) == "page" and isinstance(value["sections"], list):
        return [s.get("type") if isinstance(s, dict) else None for s in value["sections"]]
    if _shape(value) == "section":
        return [value.get("type")]
    return []


def _multiset_f1(predicted: list[Any], expected: list[Any]) -> float:
    if not predicted and not expected:
        return 1.0
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def score_json(
    outputs: Sequence[str], references: Sequence[str], schema: Mapping[str, Any] | None = None
) -> ItemScores:
    """Parse rate, schema validity and section accuracy of JSON answers against the kept answers.

    Per item (0 or 1 unless said):
    - `parses`: the output is one JSON document (`parse_json`);
    - `schema_valid`: it parses and matches `schema` (default: the page schema) as the same shape
      as its reference — a whole page where the reference is a page, one section where it is a
      section (`section_edit`);
    - `section_accuracy`: it is schema-valid and, for a page, its section types in order equal the
      reference's; for one section, its type and content equal the reference's;
    - `section_f1` (0..1): F1 of the section types as multisets (for one section: its type matches).

    `references` are the accepted / labelled / edited answers; each must parse (a reference that
    does not is a data error, raised with the item numbers, not scored as a model failure).
    """
    n = _same_length(outputs=outputs, references=references)
    validators = _validators(page_schema() if schema is None else schema)
    parsed_refs = []
    bad_refs = []
    for i, ref in enumerate(references):
        value, problem = parse_json(ref)
        (bad_refs.append(i) if problem else parsed_refs.append(value))
    if bad_refs:
        raise ValueError(
            f"references of items {_item_list(bad_refs)} are not JSON: a json target's kept answers must parse; "
            "drop those items from the evaluation set (and count them) before scoring"
        )
    parses, valid, accuracy, f1 = [], [], [], []
    problems: list[str | None] = []
    for out, ref in zip(outputs, parsed_refs, strict=True):
        value, problem = parse_json(out)
        ok_parse = problem is None
        shape = _shape(ref)
        if ok_parse:
            problem = _schema_problem(validators.get(shape, validators["any"]), value)
        ok_schema = ok_parse and problem is None
        predicted, expected = _section_types(value) if ok_schema else [], _section_types(ref)
        if not ok_schema:
            correct = False
        elif shape == "section":
            correct = value.get("type") == ref.get("type") and value.get("content") == ref.get("content")
        else:
            correct = predicted == expected
        if ok_schema and not correct and problem is None:
            problem = f"sections: answered {predicted}, expected {expected}" if shape != "section" else (
                "section: type differs" if value.get("type") != ref.get("type") else "section: content differs")
        parses.append(float(ok_parse))
        valid.append(float(ok_schema))
        accuracy.append(float(correct))
        f1.append(_multiset_f1(predicted, expected) if ok_schema else 0.0)
        problems.append(problem)
    assert len(parses) == n
    return ItemScores(
        "json",
        {"section_accuracy": tuple(accuracy), "section_f1": tuple(f1), "schema_valid": tuple(valid), "parses": tuple(parses)},
        tuple(problems),
    )


# ------------------------------------------------------------------------------------ text targets


def chrf(output: str, reference: str) -> float:
    """sacrebleu's sentence-level chrF (character 6-grams, beta 2) scaled to 0..1."""
    from sacrebleu import sentence_chrf

    return sentence_chrf(output, [reference]).score / 100.0


def score_text(outputs: Sequence[str], references: Sequence[str]) -> ItemScores:
    """Similarity to the accepted / labelled / edited answer: `chrf` (0..1) and `length_ratio`.

    `length_ratio` is len(output) / len(reference) in characters (1.0 is the reference's length;
    an empty reference counts as one character). It is reported, not gated: a model that rambles
    or stops short shows up there before chrF says why.
    """
    _same_length(outputs=outputs, references=references)
    bad = [i for i, (o, r) in enumerate(zip(outputs, references, strict=True)) if not isinstance(o, str) or not isinstance(r, str)]
    if bad:
        raise ValueError(f"items {_item_list(bad)}: outputs and references must be text")
    return ItemScores(
        "text",
        {
            "chrf": tuple(chrf(o, r) for o, r in zip(outputs, references, strict=True)),
            "length_ratio": tuple(len(o) / max(len(r), 1) for o, r in zip(outputs, references, strict=True)),
        },
        tuple(None for _ in outputs),
    )


# ------------------------------------------------------------------------------------ DPO targets


def _preferred(margin: float) -> float:
    """1 when the chosen answer wins, 0 when the rejected one does, 0.5 for a tie (neither preferred)."""
    if abs(margin) <= TIE_EPSILON:
        return 0.5
    return 1.0 if margin > 0 else 0.0


def score_preferences(margins: Sequence[float]) -> ItemScores:
    """Preference accuracy from log-probability margins, one per held-out pair.

    `margins[i]` = log p(chosen_i | prompt_i) − log p(rejected_i | prompt_i) under the model (sum
    over the answer's tokens, as TRL's DPO reward is). `preference_accuracy` is 1 when the margin is
    positive, 0 when negative, 0.5 when it is zero; `margin` keeps the value itself.
    """
    values = [float(m) for m in margins]
    bad = [i for i, m in enumerate(values) if not math.isfinite(m)]
    if bad:
        raise ValueError(f"margins of items {_item_list(bad)} are not finite numbers (NaN or infinite log-probabilities)")
    return ItemScores(
        "preference",
        {"preference_accuracy": tuple(_preferred(m) for m in values), "margin": tuple(values)},
        tuple(None for _ in values),
    )


def score_preferences_by_similarity(
    outputs: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]
) -> ItemScores:
    """Preference accuracy for models that give no log-probabilities (hosted): judge the generated answer.

    Item i counts as preferring the chosen answer when chrF(output, chosen) > chrF(output, rejected)
    (0.5 when equal). `similarity_margin` is the difference of the two chrF values (0..1 scale),
    `chrf_chosen` the similarity to the chosen answer.
    """
    _same_length(outputs=outputs, chosen=chosen, rejected=rejected)
    same = [i for i, (c, r) in enumerate(zip(chosen, rejected, strict=True)) if c == r]
    if same:
        raise ValueError(f"items {_item_list(same)}: chosen and rejected answers are identical, so no preference can be judged")
    to_chosen = [chrf(o, c) for o, c in zip(outputs, chosen, strict=True)]
    to_rejected = [chrf(o, r) for o, r in zip(outputs, rejected, strict=True)]
    margins = [c - r for c, r in zip(to_chosen, to_rejected, strict=True)]
    return ItemScores(
        "preference",
        {
            "preference_accuracy": tuple(_preferred(m) for m in margins),
            "similarity_margin": tuple(margins),
            "chrf_chosen": tuple(to_chosen),
        },
        tuple(None for _ in outputs),
    )


# ------------------------------------------------------------------------------------ embedding targets


def cosine_scores(query_embeddings: Any, corpus_embeddings: Any) -> Any:
    """Cosine similarities (queries × corpus) as a numpy array, as sentence-transformers' `cos_sim` gives."""
    import numpy as np

    q = np.asarray(query_embeddings, dtype=np.float64)
    c = np.asarray(corpus_embeddings, dtype=np.float64)
    q = q / np.clip(np.linalg.norm(q, axis=1, keepdims=True), 1e-12, None)
    c = c / np.clip(np.linalg.norm(c, axis=1, keepdims=True), 1e-12, None)
    return q @ c.T


def score_rankings(
    scores: Any,
    relevant: Mapping[str, set[str] | Sequence[str]],
    *,
    query_ids: Sequence[str],
    corpus_ids: Sequence[str],
    k: int = 10,
) -> ItemScores:
    """Per-query MRR@k, NDCG@k and accuracy@1 from a (queries × corpus) score matrix.

    The conventions of sentence-transformers' `InformationRetrievalEvaluator` (whose own results
    are only averages): documents ranked by descending score, ties broken by ascending corpus id;
    MRR@k = 1/rank of the first relevant document in the top k (0 if none); NDCG@k with binary
    relevance against an ideal list of min(|relevant|, k) hits (relevant
    documents missing from the corpus still count in the ideal, as there); accuracy@1 = the top document is
    relevant. Every query needs at least one relevant document that is in the corpus. The items,
    in `query_ids` order, are the queries.
    """
    import numpy as np

    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.shape != (len(query_ids), len(corpus_ids)):
        raise ValueError(f"scores have shape {matrix.shape}; expected (queries, corpus) = ({len(query_ids)}, {len(corpus_ids)})")
    if k < 1:
        raise ValueError("k must be at least 1")
    if not np.isfinite(matrix).all():
        raise ValueError("scores contain NaN or infinite values")
    known = set(corpus_ids)
    lacking = [qid for qid in query_ids if not (set(relevant.get(qid, ())) & known)]
    if lacking:
        raise ValueError(f"queries {_item_list(lacking)} have no relevant document in the corpus; a ranking cannot be judged")
    corpus = list(corpus_ids)
    by_id = sorted(range(len(corpus)), key=lambda j: corpus[j])  # ascending corpus id breaks ties
    mrr, ndcg, acc1 = [], [], []
    for row, qid in enumerate(query_ids):
        wanted = set(relevant[qid])
        order = sorted(by_id, key=lambda j: -matrix[row, j])  # stable: equal scores keep the id order
        hits = [1 if corpus[j] in wanted else 0 for j in order[:k]]
        first = next((rank for rank, hit in enumerate(hits) if hit), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        dcg = sum(hit / math.log2(i + 2) for i, hit in enumerate(hits))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), k)))
        ndcg.append(dcg / ideal)
        acc1.append(float(hits[0] == 1))
    return ItemScores(
        "ranking",
        {f"ndcg@{k}": tuple(ndcg), f"mrr@{k}": tuple(mrr), "accuracy@1": tuple(acc1)},
        tuple(None for _ in query_ids),
    )


# ------------------------------------------------------------------------------------ aggregation


def aggregate(per_item: ItemScores | Mapping[str, Sequence[float]], tasks: Sequence[str] | None = None) -> Aggregate:
    """Mean of each metric over all items, and per task (`tasks[i]` is item i's task)."""
    values = per_item.values if isinstance(per_item, ItemScores) else per_item
    if not values:
        raise ValueError("no metrics to aggregate")
    n = _same_length(**{str(k): v for k, v in values.items()})
    if n == 0:
        raise ValueError("no items to aggregate")
    overall = {metric: _mean(vals) for metric, vals in values.items()}
    per_task: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    if tasks is not None:
        if len(tasks) != n:
            raise ValueError(f"{len(tasks)} task labels for {n} items")
        for task in sorted(set(tasks)):
            rows = [i for i, t in enumerate(tasks) if t == task]
            counts[task] = len(rows)
            per_task[task] = {metric: _mean([vals[i] for i in rows]) for metric, vals in values.items()}
    return Aggregate(overall, per_task, n, counts)


def problem_counts(problems: Sequence[str | None]) -> dict[str, int]:
    """How many items failed for each kind of problem (the text before the first ':'), most common first."""
    counts = Counter(p.split(":", 1)[0] for p in problems if p)
    return dict(counts.most_common())
