"""Pure checks on written training files, and the cost estimate: the gates before money is spent.

Format checks follow the OpenAI cookbook's chat data-preparation notebook (error codes
`data_type`, `missing_messages_list`, `message_missing_key`, `message_unrecognized_key`,
`unrecognized_role`, `missing_content`, `example_missing_assistant_message`), plus the rules of
OpenAI's DPO format and the shapes TRL and sentence-transformers read. Each gate returns a
`GateResult` whose description says what failed, how many records, and what to do next;
`checks.py` turns them into blocking Dagster asset checks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.core.gates import GateResult
from pipeline.training_files.format_rules import format_errors
from pipeline.training_files.prepare import key_hash, normalize_prompt
from pipeline.training_files.tokens import TokenCounter

# The cookbook's constants.
MAX_TOKENS_PER_EXAMPLE = 16_385
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
#: OpenAI rejects a fine-tuning file with fewer examples.
OPENAI_MIN_EXAMPLES = 10

SAMPLE_LIMIT = 5


# ---------------------------------------------------------------- records


def prompt_of(fmt: str, record: dict[str, Any]) -> str:
    """The normalised prompt of a formatted record (what the split keeps on one side)."""
    if fmt == "instruction":
        return normalize_prompt(record.get("instruction") or "")
    if fmt == "embedding_triplets":
        return normalize_prompt(record.get("anchor") or "")
    if fmt == "openai_dpo":
        messages = (record.get("input") or {}).get("messages") or []
    elif fmt in ("openai_chat", "trl_messages"):
        messages = record.get("messages") or []
    else:
        messages = record.get("prompt") or []
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return normalize_prompt(m["content"])
    return ""


def record_tokens(fmt: str, record: dict[str, Any], counter: TokenCounter) -> int:
    """Tokens of one formatted record, counted as the provider bills them (cookbook framing)."""
    if fmt in ("openai_chat", "trl_messages"):
        return counter.chat_tokens(record["messages"])
    if fmt == "trl_prompt_completion":
        return counter.chat_tokens(record["prompt"] + record["completion"])
    if fmt == "openai_dpo":
        outputs = record["preferred_output"] + record["non_preferred_output"]
        return counter.chat_tokens(record["input"]["messages"]) + sum(
            3 + counter.count(m["content"]) for m in outputs
        )
    if fmt == "trl_preference":
        outputs = record["chosen"] + record["rejected"]
        return counter.chat_tokens(record["prompt"]) + sum(3 + counter.count(m["content"]) for m in outputs)
    if fmt == "instruction":
        return sum(counter.count_many((record["instruction"], record["input"], record["output"])))
    if fmt == "embedding_triplets":
        return sum(counter.count_many((record["anchor"], record["positive"], record["negative"])))
    raise ValueError(f"unknown training-file format {fmt!r}")


# ---------------------------------------------------------------- cost


def estimate_epochs(n_train: int, n_epochs: Any = None) -> tuple[int, str]:
    """Epochs OpenAI will train: the target's `n_epochs` when set, else the cookbook's heuristic."""
    if isinstance(n_epochs, int) and not isinstance(n_epochs, bool) and n_epochs > 0:
        return n_epochs, "hyperparameters.n_epochs"
    epochs = TARGET_EPOCHS
    if n_train == 0:
        return epochs, "heuristic"
    if n_train * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train)
    elif n_train * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train)
    return epochs, "heuristic"


def estimate_cost(
    *,
    backend: str,
    base_model: str,
    method: str,
    train_tokens: list[int] | Any,
    max_tokens: int,
    n_epochs: Any = None,
    budget_usd: float,
) -> dict[str, Any]:
    """The cookbook's estimate: billed tokens = epochs x sum(min(limit, tokens)) over training examples."""
    from pipeline.core.pricing import price_per_million

    n_train = len(train_tokens)
    billing_per_epoch = int(sum(min(max_tokens, int(t)) for t in train_tokens))
    epochs, source = estimate_epochs(n_train, n_epochs)
    billed = billing_per_epoch * epochs
    price = price_per_million(backend, base_model, method)
    return {
        "n_train_examples": n_train,
        "billing_tokens_per_epoch": billing_per_epoch,
        "n_epochs": epochs,
        "n_epochs_source": source,
        "billed_tokens": billed,
        "price_per_million_usd": price,
        "cost_usd": None if price is None else round(price * billed / 1_000_000, 4),
        "budget_usd": budget_usd,
    }


def estimate_remote_cost(
    cost: dict[str, Any],
    *,
    flavor: str,
    timeout: Any,
    method: str,
    max_steps: int,
    epochs: float,
    examples_per_step: int,
    max_length: int,
) -> dict[str, Any]:
    """Hours and USD of training `cost`'s file on Hugging Face Jobs hardware (`flavor`, billed per hour).

    Trained tokens: `max_steps` x `examples_per_step` examples of the file's mean length (capped at
    the trainer's `max_length`) when `max_steps` > 0, else the file's tokens x `epochs`. Hours: the
    flavour's start-up plus trained tokens at its assumed throughput (`prices.yaml`), capped at
    `timeout`, where the Hub stops the job. Both estimates err high: the billed token count caps at
    the file's limit, not the trainer's, and the throughputs are low figures.
    """
    from pipeline.core.pricing import duration_hours, jobs_flavor

    n_train = int(cost["n_train_examples"])
    per_epoch = int(cost["billing_tokens_per_epoch"])
    if max_steps > 0:
        mean = min(per_epoch / n_train, max_length) if n_train else 0.0
        trained, source = int(max_steps * examples_per_step * mean), f"max_steps={max_steps} x {examples_per_step} examples"
    else:
        trained, source = int(per_epoch * epochs), f"{epochs:g} epochs"
    timeout_hours = duration_hours(timeout)
    out: dict[str, Any] = {
        "remote": "huggingface_jobs",
        "flavor": flavor,
        "trained_tokens": trained,
        "trained_tokens_source": source,
        "timeout_hours": timeout_hours,
        "budget_usd": cost["budget_usd"],
        "usd_per_hour": None,
        "cost_usd": None,
    }
    hardware = jobs_flavor(flavor, method)
    if hardware is None:
        return out
    hours = hardware.startup_hours + trained * hardware.method_factor / hardware.tokens_per_second / 3600
    billed = hours if timeout_hours is None else min(hours, timeout_hours)
    return {
        **out,
        "usd_per_hour": hardware.usd_per_hour,
        "tokens_per_second": hardware.tokens_per_second,
        "startup_hours": hardware.startup_hours,
        "price_source": hardware.source,
        "estimated_hours": round(hours, 3),
        "billed_hours": round(billed, 3),
        "cost_usd": round(billed * hardware.usd_per_hour, 2),
        "max_cost_usd": None if timeout_hours is None else round(timeout_hours * hardware.usd_per_hour, 2),
    }


# ---------------------------------------------------------------- gates


def _files(manifest: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for fmt, splits in sorted(manifest["files"].items()):
        for split in ("train", "validation"):
            if splits.get(split):
                yield fmt, split, splits[split]


def format_gate(manifest: dict[str, Any], memo_dir: Path | None = None) -> GateResult:
    """Every record of every written file passes its format's rules.

    With `memo_dir` (the target's `.memo/`), a line that passed under the same rules before is not
    checked again (`check_memo.py`); every line is still read and hashed.
    """
    import numpy as np

    from pipeline.training_files.check_memo import INVALID, LineMemo, line_chunks, parse_line

    counts: Counter[str] = Counter()
    bad_records = 0
    records = 0
    samples: list[str] = []
    memos: dict[str, LineMemo] = {}
    for fmt, split, path in _files(manifest):
        if fmt not in memos:
            memos[fmt] = LineMemo(memo_dir, "format", fmt)
        memo = memos[fmt]
        for first, lines, keys in line_chunks(path):
            records += len(lines)
            passed = memo.find(keys) >= 0
            for i in np.flatnonzero(~passed).tolist():
                record = parse_line(lines[i])
                errors = ["invalid_json"] if record is INVALID else format_errors(fmt, record)
                if not errors:
                    passed[i] = True
                    continue
                bad_records += 1
                counts.update(errors)
                if len(samples) < SAMPLE_LIMIT:
                    samples.append(f"{fmt}/{split}.jsonl line {first + i}: {', '.join(sorted(set(errors)))}")
            memo.remember(keys[passed])
    for memo in memos.values():
        memo.save()
    meta = {"records_checked": records, "bad_records": bad_records, "errors": dict(sorted(counts.items()))}
    if not bad_records:
        return GateResult(True, f"All {records:,} records in {len(manifest['files'])} formats pass the format rules.", meta)
    meta["samples"] = samples
    return GateResult(
        False,
        f"{bad_records:,} of {records:,} records break the format rules "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); first: {samples[0]}. "
        "A provider would reject this file after upload. Fix the rows in the anonymized dataset "
        "(or the builder in pipeline/training_files/formats.py) and re-materialize training_file.",
        meta,
    )


def uniqueness_gate(manifest: dict[str, Any], memo_dir: Path | None = None) -> GateResult:
    """No duplicate record in the backend's files, and no prompt on both sides of the split.

    Per line the record key and prompt key (from the memo under `memo_dir` when the line was seen);
    duplicates and overlap over all of them.
    """
    import numpy as np

    from pipeline.training_files.check_memo import LineMemo, line_chunks

    fmt = manifest["backend_format"]
    splits = manifest["files"][fmt]
    memo = LineMemo(memo_dir, "uniqueness", fmt, ("record", "prompt"))

    def keys_of(record: Any) -> dict[str, int]:
        return {"record": key_hash(json.dumps(record, sort_keys=True, ensure_ascii=False)),
                "prompt": key_hash(prompt_of(fmt, record))}

    records: list[np.ndarray] = []
    prompts: dict[str, list[np.ndarray]] = {"train": [], "validation": []}
    for split in ("train", "validation"):
        if not splits.get(split):
            continue
        for _, lines, keys in line_chunks(splits[split]):
            valid, values = memo.values_of(lines, keys, keys_of)
            records.append(values["record"][valid])
            prompts[split].append(values["prompt"][valid])
    memo.save()
    every = np.concatenate(records) if records else np.zeros(0, dtype=np.int64)
    duplicates = int(len(every) - len(np.unique(every)))
    sides = [np.unique(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in prompts.values()]
    overlap = int(len(np.intersect1d(*sides, assume_unique=True)))
    meta = {"format": fmt, "duplicates": duplicates, "overlapping_prompts": overlap}
    if not duplicates and not overlap:
        return GateResult(True, f"{fmt}: no duplicate records, no prompt in both train and validation.", meta)
    problems = []
    if duplicates:
        problems.append(f"{duplicates:,} duplicate records")
    if overlap:
        problems.append(f"{overlap:,} prompts in both train and validation")
    return GateResult(
        False,
        f"{fmt}: {' and '.join(problems)}. Duplicates over-weight some examples and overlapping prompts "
        "make validation loss look better than the model is. The files were changed after the split or "
        "the split/dedupe in pipeline/training_files/build.py is broken: re-materialize training_file "
        "and, if it persists, file a bug with the dataset version.",
        meta,
    )


#: `size` memo value of a record whose tokens cannot be counted (the format gate reports it)
_UNCOUNTED = -1


def size_gate(
    manifest: dict[str, Any], *, min_examples: int, max_tokens: int, memo_dir: Path | None = None
) -> GateResult:
    """Token counts under the limit (recounted from the backend's files) and enough examples.

    A line counted before with the same encoding and code takes its count from the memo under
    `memo_dir`; the limit and the minimum are applied on every run.
    """
    from pipeline.training_files.check_memo import LineMemo, line_chunks

    fmt = manifest["backend_format"]
    encoding = manifest["tokens"]["encoding"]
    counter = TokenCounter(encoding)
    memo = LineMemo(memo_dir, "size", fmt, ("tokens",), encoding=encoding)

    def tokens_of(record: Any) -> dict[str, int]:
        try:
            return {"tokens": record_tokens(fmt, record, counter)}
        except (KeyError, TypeError, AttributeError):
            return {"tokens": _UNCOUNTED}  # the format gate reports malformed records

    over = 0
    longest = 0
    n = {"train": 0, "validation": 0}
    for split in ("train", "validation"):
        path = manifest["files"][fmt].get(split)
        if not path:
            continue
        for _, lines, keys in line_chunks(path):
            valid, values = memo.values_of(lines, keys, tokens_of, fill=_UNCOUNTED)
            tokens = values["tokens"]
            n[split] += int(valid.sum())
            counted = tokens[valid & (tokens != _UNCOUNTED)]
            if len(counted):
                longest = max(longest, int(counted.max()))
                over += int((counted > max_tokens).sum())
    memo.save()
    total = n["train"] + n["validation"]
    needed = max(min_examples, OPENAI_MIN_EXAMPLES)
    meta = {
        "format": fmt,
        "train_examples": n["train"],
        "validation_examples": n["validation"],
        "min_examples": min_examples,
        "longest_example_tokens": longest,
        "max_tokens_per_example": max_tokens,
        "over_limit": over,
    }
    problems = []
    if over:
        problems.append(
            f"{over:,} examples exceed {max_tokens:,} tokens (longest {longest:,}); the provider truncates "
            "or rejects them: lower the limit's offenders upstream or raise training_file.max_tokens_per_example "
            "only if the base model's context allows it"
        )
    if n["train"] < OPENAI_MIN_EXAMPLES:
        problems.append(
            f"only {n['train']} training examples; OpenAI rejects files with fewer than {OPENAI_MIN_EXAMPLES}"
        )
    if total < min_examples:
        dropped = sum(manifest["counts"]["dropped"].values())
        problems.append(
            f"{total} examples kept, the target needs min_examples={min_examples} "
            f"({dropped} rows were dropped: {_reasons(manifest)})"
        )
    if not problems:
        return GateResult(
            True, f"{total:,} examples (train {n['train']:,}), longest {longest:,} tokens ≤ {max_tokens:,}.", meta
        )
    short = total < needed or n["train"] < OPENAI_MIN_EXAMPLES
    advice = (
        " Collect more feedback for this target (or wait for the new-examples sensor), lower "
        "scoring.export_threshold, or lower min_examples in targets.yaml, then re-materialize."
        if short
        else ""
    )
    return GateResult(False, "; ".join(problems) + "." + advice, meta)


def cost_gate(manifest: dict[str, Any], remote: dict[str, Any] | None = None) -> GateResult:
    """The estimated training cost is known (for billed backends) and within the target's budget.

    `remote`: the `estimate_remote_cost` of a run on Hugging Face Jobs hardware, which is priced
    by the hour instead of the manifest's per-token price (0 for training on this machine).
    """
    if remote is not None:
        return _remote_cost_gate(remote)
    cost = manifest["cost"]
    meta = {k: cost[k] for k in sorted(cost)}
    price, usd, budget = cost["price_per_million_usd"], cost["cost_usd"], cost["budget_usd"]
    if price is None:
        return GateResult(
            False,
            f"No training price for {manifest['backend']} model {manifest['base_model']!r} ({manifest['method']}) "
            "in the price table, so the cost cannot be bounded: add it to pipeline/core/prices.yaml "
            "(or the file FLYWHEEL_PRICES names) and re-run this check.",
            meta,
        )
    summary = (
        f"{cost['billed_tokens']:,} billed tokens ({cost['billing_tokens_per_epoch']:,} x {cost['n_epochs']} epochs, "
        f"{cost['n_epochs_source']}) at ${price}/1M = ${usd:,.2f}"
    )
    if usd <= budget:
        return GateResult(True, f"{summary}, within the ${budget:,.2f} budget.", meta)
    return GateResult(
        False,
        f"{summary}, over the target's ${budget:,.2f} budget by ${usd - budget:,.2f}. "
        "Raise training_file.budget_usd in targets.yaml if the spend is intended, or set "
        "hyperparameters.n_epochs lower, or train on fewer/shorter examples.",
        meta,
    )


def _remote_cost_gate(remote: dict[str, Any]) -> GateResult:
    flavor, budget = remote["flavor"], remote["budget_usd"]
    meta = {k: remote[k] for k in sorted(remote)}
    if remote["usd_per_hour"] is None:
        return GateResult(
            False,
            f"No price for the Hugging Face Jobs flavour {flavor!r} in the price table, so the cost of this "
            "remote run cannot be bounded: add it under huggingface_jobs.flavors in pipeline/core/prices.yaml "
            "(or the file FLYWHEEL_PRICES names; https://huggingface.co/docs/hub/jobs-pricing lists the prices) "
            "or set the huggingface backend's remote_flavor to a listed one, then re-run this check.",
            meta,
        )
    hours, billed, price, usd = remote["estimated_hours"], remote["billed_hours"], remote["usd_per_hour"], remote["cost_usd"]
    summary = (
        f"Remote training on Hugging Face Jobs flavour {flavor} at ${price:,.2f}/hour: about {hours:,.2f} hours "
        f"({remote['trained_tokens']:,} trained tokens from {remote['trained_tokens_source']} at an assumed "
        f"{remote['tokens_per_second']:,.0f} tokens/s, plus {remote['startup_hours']:g} h start-up)"
    )
    timeout = remote["timeout_hours"]
    if timeout is not None and hours > timeout:
        summary += f", stopped by the {timeout:g} h timeout after {billed:,.2f} billed hours"
    summary += f" = ${usd:,.2f}"
    problems = []
    if usd > budget:
        problems.append(f"over the target's ${budget:,.2f} budget by ${usd - budget:,.2f}")
    if timeout is not None and hours > timeout:
        problems.append("the job would be stopped before it ends, its hours billed for no model")
    if not problems:
        return GateResult(True, f"{summary}, within the ${budget:,.2f} budget.", meta)
    return GateResult(
        False,
        f"{summary}: {' and '.join(problems)}. Raise training_file.budget_usd in targets.yaml if the spend is "
        "intended, lower max_steps or num_train_epochs in the target's hyperparameters, or pick a cheaper or "
        "faster flavour (the huggingface backend's remote_flavor; its remote_timeout caps the hours). "
        "Prices and throughputs: huggingface_jobs in pipeline/core/prices.yaml.",
        meta,
    )


def _reasons(manifest: dict[str, Any]) -> str:
    dropped = {k: v for k, v in manifest["counts"]["dropped"].items() if v}
    return ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"
