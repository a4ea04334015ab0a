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

TOP_K = 10


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
         batch_size: int = 64, top_k: int = TOP_K) -> ModelOutputs:
    """Encode queries and corpus with the model at `model_path`; per query the top-k corpus ids."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    queries, corpus, relevant, task_of_query = ranking_queries(items)
    encoder = SentenceTransformer(model_path, device="cpu")
    doc_ids = list(corpus)
    started = time.perf_counter()
    docs = encoder.encode([corpus[d] for d in doc_ids], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    doc_time = time.perf_counter() - started
    out = ModelOutputs(role=role, model=model, backend=backend, rankings=[], relevant=[], query_tasks=[])
    query_ids = list(queries)
    started = time.perf_counter()
    embedded = encoder.encode([queries[q] for q in query_ids], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    query_time = time.perf_counter() - started
    scores = embedded @ docs.T
    k = min(top_k, len(doc_ids))
    per_call = (doc_time + query_time) / max(1, len(query_ids))
    for row, qid in enumerate(query_ids):
        order = np.argsort(-scores[row], kind="stable")[:k]
        out.rankings.append([doc_ids[j] for j in order.tolist()])
        out.relevant.append(set(relevant[qid]))
        out.query_tasks.append(task_of_query[qid])
        out.latencies_s.append(per_call)
        out.costs_usd.append(0.0)
        out.errors.append(None)
    return out
