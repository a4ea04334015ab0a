"""Rank held-out items with a sentence-transformers model (base or fine-tuned), per query.

Every distinct query of the items is a query; the corpus is every kept and passed-over text of
the items; a query's relevant documents are the texts people kept for it (the same construction
as the trainer's before/after evaluation, `sentence_transformers.train.ranking_inputs`). Scores
are cosine similarities of normalised embeddings; ties keep corpus order. Heavy imports happen
inside the function.
"""

from __future__ import annotations

import time

from pipeline.backends.sentence_transformers.train import ranking_inputs
from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.runners.outputs import ModelOutputs


def ranking_queries(items: list[EvalItem]) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]], dict[str, str]]:
    """(queries, corpus, relevant, task per query) built from the items' query / kept / passed-over texts."""
    rows = [{"anchor": i.query, "positive": i.reference, "negative": i.rejected or ""} for i in items]
    queries, corpus, relevant = ranking_inputs(rows)
    corpus = {k: v for k, v in corpus.items() if v}
    task_of_query = {}
    by_text = {v: k for k, v in queries.items()}
    for item in items:
        task_of_query.setdefault(by_text[item.query], item.task)
    return queries, corpus, relevant, task_of_query


def rank(model_path: str, items: list[EvalItem], *, role: str, model: str, backend: str = "sentence_transformers",
         batch_size: int = 64) -> ModelOutputs:
    """Encode queries and corpus with the model at `model_path`: the cosine matrix, one row per query."""
    from sentence_transformers import SentenceTransformer

    queries, corpus, relevant, task_of_query = ranking_queries(items)
    encoder = SentenceTransformer(model_path, device="cpu")
    corpus_ids, query_ids = list(corpus), list(queries)
    started = time.perf_counter()
    docs = encoder.encode([corpus[d] for d in corpus_ids], batch_size=batch_size, normalize_embeddings=True,
                          convert_to_numpy=True)
    embedded = encoder.encode([queries[q] for q in query_ids], batch_size=batch_size, normalize_embeddings=True,
                              convert_to_numpy=True)
    per_call = (time.perf_counter() - started) / max(1, len(query_ids))
    return ModelOutputs(
        role=role, model=model, backend=backend, scores=embedded @ docs.T, query_ids=query_ids, corpus_ids=corpus_ids,
        relevant={q: set(relevant[q]) for q in query_ids}, query_tasks=[task_of_query[q] for q in query_ids],
        latencies_s=[per_call] * len(query_ids), costs_usd=[0.0] * len(query_ids), errors=[None] * len(query_ids),
    )
