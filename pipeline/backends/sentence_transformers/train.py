"""Contrastive fine-tuning of a sentence-transformers model; runs inside a local job worker.

`train(request, job_dir, report)` reads the `embedding_triplets` JSONL (anchor = the query,
positive = a saved item, negative = a skipped item), trains with MultipleNegativesRankingLoss and
the no-duplicates batch sampler (in-batch negatives must not be copies of the positive), ranks the
validation file before and after (accuracy@k, MRR@10, NDCG@10, triplet accuracy) and saves the
model under the job folder. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest
from pipeline.backends.packaged_models import resolve_base_model

#: hyper-parameters this trainer takes, with their defaults
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 2e-5,
    "warmup_ratio": 0.1,
    "max_steps": -1,  # > 0 stops after this many steps (tests, smoke runs)
    "max_seq_length": 256,
    "save_steps": 0,  # > 0 saves a checkpoint every N steps; a re-launched job resumes from the last
    "logging_steps": 5,
}
ACCURACY_AT_K = (1, 3, 5, 10)
TRIPLET_FIELDS = ("anchor", "positive", "negative")


def validate_hyperparameters(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with the target's values; raises ValueError naming an unknown or bad key."""
    unknown = sorted(set(hyperparameters) - set(DEFAULT_HYPERPARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown sentence_transformers hyper-parameter(s) {unknown}; "
            f"allowed: {', '.join(sorted(DEFAULT_HYPERPARAMETERS))} (fix the target in targets.yaml)"
        )
    merged = {**DEFAULT_HYPERPARAMETERS, **hyperparameters}
    checks = {
        "epochs": lambda v: isinstance(v, (int, float)) and v > 0,
        "batch_size": lambda v: isinstance(v, int) and v >= 2,
        "learning_rate": lambda v: isinstance(v, (int, float)) and 0 < v < 1,
        "warmup_ratio": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
        "max_steps": lambda v: isinstance(v, int),
        "max_seq_length": lambda v: isinstance(v, int) and v > 0,
        "save_steps": lambda v: isinstance(v, int) and v >= 0,
        "logging_steps": lambda v: isinstance(v, int) and v > 0,
    }
    for key, ok in checks.items():
        if isinstance(merged[key], bool) or not ok(merged[key]):
            raise ValueError(
                f"sentence_transformers hyper-parameter {key}={merged[key]!r} is out of range "
                "(batch_size is an int >= 2 since the loss needs in-batch negatives; 0 <= warmup_ratio < 1)"
            )
    return merged


def read_triplets(path: str | Path) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The usable triplets of a JSONL file and, by reason, the lines set aside (read = kept + dropped)."""
    rows: list[dict[str, str]] = []
    dropped: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            reason = None
            try:
                record = json.loads(line)
            except ValueError:
                record, reason = None, "not_json"
            if reason is None and not isinstance(record, dict):
                reason = "not_an_object"
            if reason is None:
                for name in TRIPLET_FIELDS:
                    value = record.get(name)
                    if not isinstance(value, str) or not value.strip():
                        reason = f"missing_{name}"
                        break
            if reason is None and record["positive"] == record["negative"]:
                reason = "positive_equals_negative"
            if reason is not None:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            rows.append({name: record[name] for name in TRIPLET_FIELDS})
    return rows, dropped


def ranking_inputs(rows: list[dict[str, str]]) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Queries, corpus and relevance judgements for an information-retrieval evaluation.

    Every distinct anchor is a query; the corpus is every positive and negative text; a query's
    relevant documents are its positives. Texts are keyed by position so identical texts share an id.
    """
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}

    def doc(text: str) -> str:
        if text not in doc_ids:
            doc_ids[text] = f"d{len(doc_ids)}"
            corpus[doc_ids[text]] = text
        return doc_ids[text]

    for row in rows:
        if row["anchor"] not in query_ids:
            query_ids[row["anchor"]] = f"q{len(query_ids)}"
            queries[query_ids[row["anchor"]]] = row["anchor"]
        qid = query_ids[row["anchor"]]
        relevant.setdefault(qid, set()).add(doc(row["positive"]))
        doc(row["negative"])
    return queries, corpus, relevant


def evaluate(model, rows: list[dict[str, str]], batch_size: int = 64) -> dict[str, float]:
    """Ranking metrics of `model` on triplets: accuracy@k, MRR@10, NDCG@10, MAP@100, triplet accuracy."""
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
        TripletEvaluator,
    )

    queries, corpus, relevant = ranking_inputs(rows)
    k_values = [k for k in ACCURACY_AT_K if k <= max(1, len(corpus))]
    ir = InformationRetrievalEvaluator(
        queries, corpus, relevant, name="ir", batch_size=batch_size, write_csv=False,
        accuracy_at_k=k_values, precision_recall_at_k=[1, min(10, len(corpus))],
        mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[100], score_functions=None, main_score_function="cosine",
    )
    triplet = TripletEvaluator(
        [r["anchor"] for r in rows], [r["positive"] for r in rows], [r["negative"] for r in rows],
        name="triplet", batch_size=batch_size, write_csv=False,
    )
    out: dict[str, float] = {}
    for key, value in ir(model).items():  # "ir_cosine_mrr@10" -> "mrr@10"
        short = key.split("_cosine_", 1)[-1]
        if short.startswith(("accuracy@", "mrr@", "ndcg@", "map@", "recall@", "precision@")):
            out[short] = round(float(value), 6)
    for key, value in triplet(model).items():
        if key.endswith("accuracy"):
            out["triplet_accuracy"] = round(float(value), 6)
    return out


def count_tokens(model, rows: list[dict[str, str]], max_length: int) -> int:
    """Tokens the model sees per epoch (each text truncated to the model's max length)."""
    tokenizer = model.tokenizer
    texts = [row[name] for row in rows for name in TRIPLET_FIELDS]
    total = 0
    for start in range(0, len(texts), 512):
        encoded = tokenizer(texts[start : start + 512], truncation=True, max_length=max_length)
        total += sum(len(ids) for ids in encoded["input_ids"])
    return total


def train(request: FineTuneRequest, job_dir: Path, report) -> dict[str, Any]:
    """Fine-tune `request.base_model` on the triplets; returns {"model_path", "metrics", "trained_tokens"}."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    job_dir = Path(job_dir)
    hp = validate_hyperparameters(request.hyperparameters)

    train_rows, train_dropped = read_triplets(request.train_file)
    if not train_rows:
        raise ValueError(
            f"{request.train_file} holds no usable (anchor, positive, negative) triplets "
            f"(set aside: {train_dropped or 'the file is empty'}); rebuild the training_file"
        )
    valid_rows: list[dict[str, str]] = []
    valid_dropped: dict[str, int] = {}
    if request.validation_file:
        valid_rows, valid_dropped = read_triplets(request.validation_file)
    report({"phase": "loading", "train_triplets": len(train_rows), "validation_triplets": len(valid_rows)})

    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    torch.manual_seed(request.seed)
    model = SentenceTransformer(resolve_base_model(request.base_model), device="cpu" if not torch.cuda.is_available() else None)
    model.max_seq_length = min(hp["max_seq_length"], model.max_seq_length or hp["max_seq_length"])

    metrics: dict[str, Any] = {
        "train_triplets": len(train_rows),
        "train_lines_set_aside": dict(sorted(train_dropped.items())),
        "validation_triplets": len(valid_rows),
        "validation_lines_set_aside": dict(sorted(valid_dropped.items())),
    }
    if valid_rows:
        report({"phase": "evaluating_base"})
        for key, value in evaluate(model, valid_rows).items():
            metrics[f"base_{key}"] = value

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            update = {"step": state.global_step, "max_steps": state.max_steps, "epoch": round(state.epoch or 0, 4)}
            if "loss" in logs:
                update["loss"] = round(float(logs["loss"]), 6)
            if "learning_rate" in logs:
                update["learning_rate"] = float(logs["learning_rate"])
            report(update)

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            report({"checkpoint": {"step": state.global_step, "path": str(path)}})

    checkpoints_dir = job_dir / "checkpoints"
    resume = None
    if hp["save_steps"] and checkpoints_dir.exists():
        existing = sorted(checkpoints_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        resume = str(existing[-1]) if existing else None
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints_dir),
        num_train_epochs=float(hp["epochs"]),
        max_steps=int(hp["max_steps"]),
        per_device_train_batch_size=int(hp["batch_size"]),
        learning_rate=float(hp["learning_rate"]),
        warmup_steps=float(hp["warmup_ratio"]),  # transformers 5: a value below 1 is a share of the steps
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps" if hp["save_steps"] else "no",
        save_steps=hp["save_steps"] or 500,
        logging_strategy="steps",
        logging_steps=int(hp["logging_steps"]),
        report_to="none",
        seed=request.seed,
        data_seed=request.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )
    dataset = Dataset.from_list(train_rows)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[_Progress()],
    )
    report({"phase": "training", "resumed_from": resume})
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    metrics["train_runtime_s"] = round(time.perf_counter() - started, 3)
    metrics["train_loss"] = round(float(output.training_loss), 6)
    metrics["steps"] = int(output.global_step)
    metrics["epochs"] = float(hp["epochs"])

    model_dir = Path(request.output_dir) if request.output_dir else job_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(model_dir))
    report({"phase": "evaluating", "step": int(output.global_step)})
    if valid_rows:
        metrics.update(evaluate(model, valid_rows))
    epochs_seen = min(float(hp["epochs"]), output.global_step / max(1, math.ceil(len(train_rows) / hp["batch_size"])))
    trained_tokens = int(count_tokens(model, train_rows, model.max_seq_length) * epochs_seen)
    (model_dir / "flywheel_training.json").write_text(
        json.dumps({"request": request.as_dict(), "hyperparameters": hp, "metrics": metrics}, indent=2, sort_keys=True),
        encoding="utf-8",
    )
    report({"phase": "done"})
    return {"model_path": str(model_dir), "metrics": metrics, "trained_tokens": trained_tokens}
