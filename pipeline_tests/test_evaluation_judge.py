"""Judging models on the same items: page answers (JSON and text), the comparison, the report, and the CLI."""

from __future__ import annotations

import json

import pytest

from pipeline.core.targets import parse_targets
from pipeline.evaluation.contenders import Contender
from pipeline.evaluation.evaluate import judge, score_page_answers
from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.report import (
    comparison_dict,
    comparison_from_dict,
    differing,
    per_task,
    picture,
    side_by_side,
)
from pipeline.evaluation.runners.outputs import ModelOutputs


def _page() -> str:
    """A page as the synthetic world writes it (so it matches the page schema)."""
    from pipeline.synth import page_builder
    from pipeline.synth.world import World

    world = World(1)
    return json.dumps(page_builder.make_page(page_builder.Business(world), ["hero", "pricing", "contact"], world))


PAGE = _page()

TARGETS = """
targets:
  writer:
    tasks: [a, b]
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    gates: {min_eval_items: 10, max_eval_items: 100, bootstrap_resamples: 500}
"""


def _item(i, reference, task="a"):
    return EvalItem(id=f"i{i:03d}", task=task, prompt=({"role": "user", "content": f"question {i}"},), reference=reference)


def test_page_answers_take_section_accuracy_for_json_and_chrf_for_text():
    items = [_item(0, PAGE, "page_generation"), _item(1, "Use warm colours and a serif font.", "design_choice")]
    right = score_page_answers([PAGE, "Use warm colours and a serif font."], items)
    wrong = score_page_answers(["not json at all", "Something else entirely."], items)
    assert right.primary == "item_score" and right["item_score"] == (1.0, 1.0)
    assert wrong["item_score"][0] == 0.0 and 0.0 < wrong["item_score"][1] < 0.5
    assert wrong.problems[0] and wrong.problems[1] is None


def _outputs(role, texts):
    return ModelOutputs(role=role, model=role, backend="openai", texts=texts, latencies_s=[0.1] * len(texts),
                        costs_usd=[0.00001] * len(texts), errors=[None] * len(texts))


def test_judge_compares_candidate_with_champion_and_base_and_reports_what_differs():
    target = parse_targets(TARGETS)["writer"]
    references = [f"The answer to question {i} is {i * 7} apples, kept as written." for i in range(40)]
    items = [_item(i, ref, "a" if i % 2 else "b") for i, ref in enumerate(references)]
    good = [r if i % 5 else r.upper() for i, r in enumerate(references)]
    vague = [f"Something about question {i}." for i in range(40)]
    contenders = [Contender("base", "openai", "base"), Contender("champion", "openai", "base"),
                  Contender("candidate", "openai", "ft:x", job_id="j1")]
    outputs = {"base": _outputs("base", vague), "champion": _outputs("champion", vague), "candidate": _outputs("candidate", good)}
    j = judge(target, contenders, items, outputs)
    assert j.kind == "text" and j.primary == "chrf" and j.n_items == 40
    assert j.vs_champion.low > 0.2 and set(j.vs_champion.per_task) == {"a", "b"}
    assert j.vs_champion.wins == 32 and j.vs_champion.losses == 8  # upper-cased answers lose on chrF
    report = {"primary": j.primary, "summaries": j.summaries, "vs_champion": comparison_dict(j.vs_champion),
              "differing": j.differing}
    table = side_by_side(report)
    assert "**chrf**" in table and "latency per call" in table and "cost per call" in table
    assert "| a | 20 |" in per_task(report)
    assert "candidate better on 32, worse on 8" in picture(report)
    assert "question" in differing(report) and len(j.differing) == 5
    again = comparison_from_dict(report["vs_champion"])
    assert again.low == pytest.approx(j.vs_champion.low, abs=1e-5) and set(again.per_task) == {"a", "b"}
