"""Judge a candidate against the champion and the base model on the same items: the pure core of `evaluated_model`.

`run_models` runs every distinct model once over the items (the same inputs and decoding for
all; see the runners), `score_outputs` turns each model's outputs into per-item scores of the
target's kind, and `judge` compares candidate with champion (and with base) by a seeded paired
bootstrap on the primary metric, overall and per task, and finds the items where the models
differ most. Nothing here touches Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.core.targets import Target
from pipeline.evaluation import metrics
from pipeline.evaluation.contenders import Contender
from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.runners.outputs import ModelOutputs


def target_kind(target: Target) -> str:
    """ranking (embedding targets), preference (DPO), json or text (SFT, by `evaluation.output`)."""
    if target.method == "embedding":
        return "ranking"
    if target.method == "dpo":
        return "preference"
    return target.evaluation.output


def _hf_outputs(target: Target, contender: Contender, items: list[EvalItem], kind: str) -> ModelOutputs:
    from pipeline.evaluation.runners import causal_lm

    lm, tokenizer = causal_lm.load(contender.model, contender.local_path)
    cfg = target.evaluation
    if kind == "preference":
        return causal_lm.preference_margins(lm, tokenizer, items, role=contender.role, model=contender.model,
                                            batch_size=cfg.batch_size)
    return causal_lm.generate(lm, tokenizer, items, role=contender.role, model=contender.model,
                              max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)


def run_model(target: Target, contender: Contender, items: list[EvalItem], *, hosted_client: Any = None) -> ModelOutputs:
    """One model's outputs over the items, by backend."""
    kind = target_kind(target)
    cfg = target.evaluation
    if contender.backend == "sentence_transformers":
        from pipeline.backends.packaged_models import resolve_base_model
        from pipeline.evaluation.runners import embedding

        path = contender.local_path or resolve_base_model(contender.model)
        return embedding.rank(path, items, role=contender.role, model=contender.model)
    if contender.backend == "huggingface":
        return _hf_outputs(target, contender, items, kind)
    if contender.backend == "openai":
        from pipeline.evaluation.runners import hosted

        if hosted_client is None:
            raise ValueError(f"{target.name}: the openai backend needs its client to evaluate {contender.model}")
        return hosted.chat(hosted_client, items, role=contender.role, model=contender.model, seed=target.gates.seed,
                           max_new_tokens=cfg.max_new_tokens, concurrency=cfg.concurrency)
    raise ValueError(f"no evaluation runner for backend {contender.backend!r}")


def run_models(target: Target, contenders: list[Contender], items: list[EvalItem], *, hosted_client: Any = None,
               log: Any = None) -> dict[str, ModelOutputs]:
    """Outputs per role; a model that appears in two roles (champion = base) runs once."""
    done: dict[tuple, ModelOutputs] = {}
    out: dict[str, ModelOutputs] = {}
    for contender in contenders:
        if contender.identity not in done:
            if log:
                log(f"{target.name}: running {contender.role} {contender.model} on {len(items)} items")
            done[contender.identity] = run_model(target, contender, items, hosted_client=hosted_client)
        out[contender.role] = done[contender.identity]
    return out


def score_outputs(kind: str, outputs: ModelOutputs, items: list[EvalItem]) -> tuple[metrics.ItemScores, list[str]]:
    """Per-item scores of one model and the task of each scored unit (an item, or a query for rankings)."""
    if kind == "ranking":
        scores = metrics.score_rankings(outputs.scores, outputs.relevant, query_ids=outputs.query_ids,
                                        corpus_ids=outputs.corpus_ids)
        return scores, list(outputs.query_tasks or [])
    tasks = [i.task for i in items]
    if kind == "preference":
        if outputs.margins is not None:
            return metrics.score_preferences(outputs.margins), tasks
        return metrics.score_preferences_by_similarity(outputs.texts, [i.reference for i in items],
                                                       [str(i.rejected) for i in items]), tasks
    if kind == "json":
        return score_page_answers(outputs.texts, items), tasks
    return metrics.score_text(outputs.texts, [i.reference for i in items]), tasks


def json_items(items: list[EvalItem]) -> list[int]:
    """Indexes of the items whose kept answer is JSON (a page or a section); the rest are text answers."""
    return [i for i, item in enumerate(items) if metrics.parse_json(item.reference)[1] is None]


def score_page_answers(texts: list[str], items: list[EvalItem]) -> metrics.ItemScores:
    """A json target's items: JSON answers by section accuracy, text answers (e.g. design_choice) by chrF.

    `item_score` is each item's primary value (both are 0..1); the JSON metrics are kept per item
    too, as NaN-free values over the JSON items only, in `json_scores` (see `json_summary`).
    """
    json_idx = set(json_items(items))
    text_idx = [i for i in range(len(items)) if i not in json_idx]
    combined = [0.0] * len(items)
    problems: list[str | None] = [None] * len(items)
    if json_idx:
        ordered = sorted(json_idx)
        scored = metrics.score_json([texts[i] for i in ordered], [items[i].reference for i in ordered])
        for row, i in enumerate(ordered):
            combined[i] = scored["section_accuracy"][row]
            problems[i] = scored.problems[row] if scored.problems else None
    if text_idx:
        scored = metrics.score_text([texts[i] for i in text_idx], [items[i].reference for i in text_idx])
        for row, i in enumerate(text_idx):
            combined[i] = scored["chrf"][row]
    return metrics.ItemScores("page", {"item_score": tuple(combined)}, tuple(problems))


def json_summary(texts: list[str], items: list[EvalItem]) -> dict[str, Any]:
    """Parse rate, schema validity, section accuracy and F1 over the JSON items (what the floor gate reads)."""
    ordered = json_items(items)
    if not ordered:
        return {"n": 0}
    scored = metrics.score_json([texts[i] for i in ordered], [items[i].reference for i in ordered])
    return {"n": len(ordered), **scored.means(), "problems": metrics.problem_counts(scored.problems)}


@dataclass
class Judgement:
    """Everything the evaluation found: per-model scores, the comparisons, and what differs most."""

    kind: str
    primary: str
    n_items: int
    units: list[str]  # item ids (or query ids for rankings), aligned with the scores
    tasks: list[str]
    scores: dict[str, metrics.ItemScores]
    summaries: dict[str, dict[str, Any]]  # role -> aggregate + call summary
    vs_champion: Any
    vs_base: Any
    differing: list[dict[str, Any]] = field(default_factory=list)


def judge(target: Target, contenders: list[Contender], items: list[EvalItem], outputs: dict[str, ModelOutputs],
          *, compare: Any = None) -> Judgement:
    """Score every model and compare candidate with champion and base (`compare`: stats.compare)."""
    if compare is None:
        from pipeline.evaluation.stats import compare
    kind = target_kind(target)
    scores, tasks = {}, []
    for role, out in outputs.items():
        scores[role], tasks = score_outputs(kind, out, items)
    primary = scores["candidate"].primary
    summaries = {
        role: {**metrics.aggregate(s, tasks).as_dict(), "calls": outputs[role].call_summary()} for role, s in scores.items()
    }
    gates = target.gates
    kwargs = {"tasks": tasks, "metric": primary, "seed": gates.seed, "n_resamples": gates.bootstrap_resamples,
              "confidence": gates.confidence}
    vs_champion = compare(list(scores["candidate"][primary]), list(scores["champion"][primary]), **kwargs)
    vs_base = compare(list(scores["candidate"][primary]), list(scores["base"][primary]), **kwargs)
    if kind == "json":
        for role, out in outputs.items():
            summaries[role]["json"] = json_summary(out.texts, items)
    units = list(outputs["candidate"].query_ids) if kind == "ranking" else [i.id for i in items]
    return Judgement(kind=kind, primary=primary, n_items=len(items), units=units, tasks=tasks, scores=scores,
                     summaries=summaries, vs_champion=vs_champion, vs_base=vs_base,
                     differing=differing_items(kind, primary, scores, outputs, items))


def differing_items(kind: str, primary: str, scores: dict[str, metrics.ItemScores], outputs: dict[str, ModelOutputs],
                    items: list[EvalItem], limit: int = 5, width: int = 160) -> list[dict[str, Any]]:
    """The items where candidate and champion differ most on the primary metric (anonymized text only)."""
    cand, champ = scores["candidate"][primary], scores["champion"][primary]
    if kind == "ranking":
        from pipeline.evaluation.runners.embedding import ranking_queries

        queries = ranking_queries(items)[0]
    order = sorted(range(len(cand)), key=lambda i: (-abs(cand[i] - champ[i]), i))[:limit]
    rows = []
    for i in order:
        if abs(cand[i] - champ[i]) == 0:
            break
        row: dict[str, Any] = {"delta": round(cand[i] - champ[i], 4), "candidate": round(cand[i], 4), "champion": round(champ[i], 4)}
        if kind == "ranking":
            qid = outputs["candidate"].query_ids[i]
            row.update(id=qid, task=outputs["candidate"].query_tasks[i], prompt=_clip(queries[qid], width))
        else:
            row.update(id=items[i].id, task=items[i].task, prompt=_clip(items[i].query, width),
                       kept=_clip(items[i].reference, width))
            for role in ("candidate", "champion"):
                texts = outputs[role].texts
                if texts is not None:
                    row[f"{role}_answer"] = _clip(texts[i], width)
        rows.append(row)
    return rows


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
