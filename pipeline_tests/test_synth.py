"""`flywheel seed`: the synthetic log is deterministic, streams, honours the contract and is realistic."""

from __future__ import annotations

import gc
import io
import json
import math
import re
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from pipeline.anonymize.checksums import iban_ok, luhn_ok
from pipeline.core.contract import VALIDATORS, ContractError, latest_feedback, parse_line, record_key
from pipeline.synth import iter_generated, iter_records, seed_command, write_jsonl
from pipeline.synth.faults import EXPECTED_REASON, FAULTS
from pipeline.synth.generate import EPISODES, main
from pipeline.synth.page_builder import SECTION_TYPES
from pipeline.synth.pii import PII_KINDS
from pipeline.synth.signals import TOPICS
from pipeline.synth.world import ANCHOR_EPOCH, AVATARS, SPAN_S

N = 5_000


@pytest.fixture(scope="module")
def log():
    """5,000 interactions of seed 0 with what the generator knows about each record."""
    return list(iter_generated(N, seed=0))


@pytest.fixture(scope="module")
def good(log):
    """The good records, validated into canonical form, by type."""
    out = defaultdict(list)
    for g in log:
        if g.fault is None:
            record = dict(g.record)
            kind = record.pop("type")
            out[kind].append(VALIDATORS[kind](record))
    return out


@pytest.fixture(scope="module")
def feedback_by_interaction(good):
    out = defaultdict(list)
    for event in good["feedback"]:
        out[event["interaction_id"]].append(event)
    return out


def _validate(line: str) -> str | None:
    """The quarantine reason of one JSONL line, or None when it honours the contract."""
    parsed = parse_line(line.encode())
    if not isinstance(parsed, tuple):
        return parsed.reason
    record_type, record = parsed
    try:
        VALIDATORS[record_type](record)
    except ContractError as exc:
        return exc.rejection.reason
    return None


# ----------------------------------------------------------------------- determinism and streaming


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    first, second, other = io.StringIO(), io.StringIO(), io.StringIO()
    counts = write_jsonl(first, 1_500, seed=7)
    assert write_jsonl(second, 1_500, seed=7) == counts
    write_jsonl(other, 1_500, seed=8)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue() != other.getvalue()
    assert counts["records"] == first.getvalue().count("\n")
    assert counts["interactions"] == 1_500


def test_good_records_do_not_depend_on_the_bad_share():
    clean = [g.line for g in iter_generated(800, seed=3, bad_share=0.0)]
    noisy = [g.line for g in iter_generated(800, seed=3, bad_share=0.05) if g.fault is None]
    assert clean == noisy
    assert all(g.fault is None for g in iter_generated(300, seed=3, bad_share=0.0))


def test_organisations_come_first_and_each_interaction_precedes_its_feedback(log):
    types = [g.record["type"] for g in log]
    assert types[:40] == ["organization"] * 40 and "organization" not in types[40:]
    seen = set()
    for g in log:
        if g.fault is None and g.record["type"] == "interaction":
            seen.add(g.record["id"])
        elif g.fault is None and g.record["type"] == "feedback":
            assert g.record["interaction_id"] in seen


def test_n_counts_interactions_and_zero_gives_only_organisations():
    assert sum(r["type"] == "interaction" for r in iter_records(0)) == 0
    assert len(list(iter_records(0))) == 40
    assert sum(r["type"] == "interaction" for r in iter_records(123, bad_share=0)) == 123


def test_memory_stays_flat_in_n():
    """Peak traced memory while streaming 20k interactions stays within 2x of 2k.

    CPython keeps freed tuples and dicts on free lists, which tracemalloc still counts until a full
    collection empties them; collecting every 2,000 records keeps that bounded cache out of the figure.
    """

    def peak(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            for i, _ in enumerate(iter_records(n, seed=1)):
                if i % 2_000 == 0:
                    gc.collect()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(20_000)
    assert large < 2 * small, (
        f"peak {large:,} B for 20k interactions vs {small:,} B for 2k: memory grows with n"
    )


# ----------------------------------------------------------------------- the contract


def test_every_good_record_passes_the_contract_validators(log):
    failures = [(reason, g.line[:200]) for g in log if g.fault is None and (reason := _validate(g.line))]
    assert not failures, failures[:3]


def test_bad_records_fail_the_contract_for_their_stated_reason(log):
    bad = [g for g in log if g.fault is not None]
    share = len(bad) / len(log)
    assert 0.005 <= share <= 0.02, f"bad share {share:.3%}"
    assert Counter(g.fault for g in bad).keys() == set(FAULTS)
    interaction_ids = {g.record["id"] for g in log if g.record["type"] == "interaction"}
    for g in bad:
        assert _validate(g.line) == EXPECTED_REASON[g.fault], (g.fault, g.line[:200])
        if g.fault == "unknown_interaction":  # valid alone; the join with interactions catches it
            assert g.record["interaction_id"] not in interaction_ids
        if g.record["type"] == "interaction":  # a broken copy must never overwrite a good record on import
            assert "_bad_" in g.record["id"]


def test_every_record_has_its_own_store_key_so_counts_add_up():
    """The store upserts by id (feedback: by content); a repeated key would store fewer rows than written."""
    keys = Counter()
    for g in iter_generated(8_000, seed=0, bad_share=0.05):
        record = dict(g.record)
        record_type = record.pop("type")
        keys[(record_type, record_key(record_type, record))] += 1
    assert not [key for key, count in keys.items() if count > 1]


def test_the_log_imports_into_the_store_row_for_row(tmp_path):
    from pipeline.core.store import ImportCounts, Store, feedback, interactions, organizations

    store = Store(f"sqlite:///{tmp_path / 'flywheel.db'}")
    lines = [g.line for g in iter_generated(1_000, seed=6, bad_share=0.05)]
    counts = ImportCounts()
    store.import_batch([parse_line(line.encode()) for line in lines], counts)
    assert counts.read == counts.inserted == len(lines)  # broken records are stored too, for raw_interactions
    stored = store.count(interactions) + store.count(feedback) + store.count(organizations)
    assert stored == len(lines)
    assert store.opted_out_orgs() == {
        "org_optout_sunny_bakery",
        "org_optout_deepcast",
        "org_optout_loudmouth_labs",
    }
    store.dispose()


def test_bad_share_is_validated():
    with pytest.raises(ValueError, match="bad_share"):
        list(iter_records(10, bad_share=0.9))
    with pytest.raises(ValueError, match="n must be"):
        list(iter_records(-1))


def test_timestamps_are_rfc3339_utc_within_the_window_before_the_anchor(log):
    low, high = ANCHOR_EPOCH - SPAN_S, ANCHOR_EPOCH + 2 * 86_400  # a reviewer's label may come a day later
    for g in log:
        if g.fault is None and "occurred_at" in g.record:
            stamp = g.record["occurred_at"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
            assert low <= datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() <= high


# ----------------------------------------------------------------------- products, tenants, tasks


def test_product_mix_and_tasks_follow_the_seed_products(log, good):
    products = Counter(g.product for g in log if g.fault is None and g.record["type"] == "interaction")
    for product, (_, share, _) in EPISODES.items():
        assert abs(products[product] / N - share) < 0.04, (product, products[product] / N)
    tasks = Counter(i["task"] for i in good["interaction"])
    assert set(tasks) == {
        "page_generation",
        "section_edit",
        "design_choice",
        "tool_invocation",
        "signal_extraction",
        "ux_review",
        "roast",
        "chat",
    }
    chat_orgs = Counter(i["org_id"] for i in good["interaction"] if i["task"] == "chat")
    assert set(chat_orgs) == set(AVATARS) and min(chat_orgs.values()) >= 50


def test_tenants_log_in_proportion_to_their_weight(good):
    """Big tenants log more, so some qualify for a per-tenant family and others do not (yet)."""
    from pipeline.synth.world import ORGS

    # a tenant is drawn once per session (conversation), so sessions follow the weights; interactions
    # per session vary (1..8 turns), which would only add noise to the count
    sessions = Counter(org for org, _ in {(i["org_id"], i["conversation_id"]) for i in good["interaction"]})
    for product in ("roast", "avatar_chat"):
        orgs = [o for o in ORGS if o.product == product and not o.training_opt_out]
        total = sum(sessions[o.org_id] for o in orgs)
        weights = sum(o.weight for o in orgs)
        for org in orgs:
            expected = org.weight / weights
            tolerance = 4 * math.sqrt(expected * (1 - expected) / total)  # 4 binomial standard errors
            assert abs(sessions[org.org_id] / total - expected) < tolerance, (org.org_id, sessions[org.org_id], total)
    assert sessions["avatar_max"] > 2 * sessions["avatar_nova"]  # a weight of 1.5 logs more than one of 0.4


def test_opted_out_tenants_exist_and_log_interactions(good):
    orgs = {o["org_id"]: o for o in good["organization"]}
    assert 35 <= len(orgs) <= 45
    assert {o["plan"] for o in orgs.values()} == {"free", "pro", "enterprise"}
    opted_out = {org_id for org_id, o in orgs.items() if o["training_opt_out"]}
    assert len(opted_out) == 3 and all("optout" in org_id for org_id in opted_out)
    logged = Counter(i["org_id"] for i in good["interaction"] if i["org_id"] in opted_out)
    assert set(logged) == opted_out and min(logged.values()) >= 20
    assert all(i["org_id"] in orgs for i in good["interaction"])


def test_page_json_is_valid_about_95_percent_and_has_the_ten_section_types(good, feedback_by_interaction):
    pages = [i for i in good["interaction"] if i["task"] == "page_generation"]
    parsed = []
    for page in pages:
        assert page["response_format"] == "json"
        try:
            parsed.append((page, json.loads(page["response"])))
        except ValueError:
            pass
    validity = len(parsed) / len(pages)
    assert 0.92 <= validity <= 0.98, f"page JSON validity {validity:.1%}"
    used = set()
    for _page, doc in parsed:
        assert doc["version"] == "1.0" and doc["metadata"]["title"]
        used |= {s["type"] for s in doc["sections"]}
    assert used == set(SECTION_TYPES)
    # answers whose sections match the request are kept more often
    kept = {True: [], False: []}
    for page, doc in parsed:
        match = [s["type"] for s in doc["sections"]] == page["context"]["requested_sections"]
        outcome = latest_feedback(feedback_by_interaction[page["id"]]).get("outcome")
        if outcome:
            kept[match].append(outcome == "accepted")
    assert sum(kept[True]) / len(kept[True]) > sum(kept[False]) / len(kept[False]) + 0.3


def test_section_edits_carry_the_current_page(good):
    edits = [i for i in good["interaction"] if i["task"] == "section_edit"]
    assert edits and all(i["context"]["current_page"]["sections"] for i in edits)


def test_signal_sessions_hold_one_query_and_chunks_naming_a_tactic_are_saved(good, feedback_by_interaction):
    rates = {True: Counter(), False: Counter()}
    sessions = defaultdict(set)
    tactics = [tactic for topic in TOPICS.values() for tactic in topic.tactics]
    for item in good["interaction"]:
        if item["task"] != "signal_extraction":
            continue
        sessions[item["conversation_id"]].add(item["messages"][-1]["content"])
        concrete = any(tactic in item["response"] for tactic in tactics)
        action = latest_feedback(feedback_by_interaction[item["id"]]).get("action")
        if action:
            rates[concrete][action] += 1
    assert all(len(queries) == 1 for queries in sessions.values())  # one query per session
    assert sum(len(q) for q in sessions.values()) < len(
        [i for i in good["interaction"] if i["task"] == "signal_extraction"]
    )
    saved = {k: (c["saved"] + c["snipped"]) / c.total() for k, c in rates.items()}
    assert saved[True] > 0.6 and saved[False] < 0.1, saved


def test_ux_reviews_get_reviewer_labels_and_fractional_scores(good, feedback_by_interaction):
    reviews = [i for i in good["interaction"] if i["task"] == "ux_review"]
    labelled = ratings = 0
    for review in reviews:
        assert "issues_found" in json.loads(review["response"])
        latest = latest_feedback(feedback_by_interaction[review["id"]])
        if "label" in latest:
            labelled += 1
            assert "issues_found" in json.loads(latest["label"])
        if "rating" in latest:
            ratings += 1
            assert isinstance(latest["rating"], float) and 0 <= latest["rating"] <= 1
    assert 0.3 <= labelled / len(reviews) <= 0.5
    assert ratings / len(reviews) > 0.5


def test_roasts_are_edited_rejected_and_regenerated_in_the_same_conversation(good, feedback_by_interaction):
    roasts = [i for i in good["interaction"] if i["task"] == "roast"]
    outcomes = Counter()
    by_conversation = defaultdict(list)
    for roast in roasts:
        by_conversation[roast["conversation_id"]].append(roast)
        latest = latest_feedback(feedback_by_interaction[roast["id"]])
        outcomes[latest.get("outcome")] += 1
        if latest.get("outcome") == "accepted_with_edits":
            assert latest["edit"] != roast["response"]
    assert {"accepted", "accepted_with_edits", "rejected", "regenerated"} <= set(outcomes)
    redone = [turns for turns in by_conversation.values() if len(turns) > 1]
    assert redone and all(t["messages"] == turns[0]["messages"] for turns in redone for t in turns)


def test_avatar_chats_are_multi_turn_with_thumbs_and_abandonment(good, feedback_by_interaction):
    chats = defaultdict(list)
    for item in good["interaction"]:
        if item["task"] == "chat":
            chats[item["conversation_id"]].append(item)
    long = [turns for turns in chats.values() if len(turns) >= 3]
    assert long
    for turns in long:
        assert [len(t["messages"]) for t in turns] == [2 * k + 1 for k in range(len(turns))]
        assert len({t["org_id"] for t in turns}) == 1
    events = [e for turns in chats.values() for t in turns for e in feedback_by_interaction[t["id"]]]
    assert {e["value"] for e in events if e["kind"] == "thumbs"} == {1, -1}
    assert any(e["kind"] == "outcome" and e["value"] == "abandoned" for e in events)


def test_feedback_mix_is_realistic(good, feedback_by_interaction):
    kinds = Counter(e["kind"] for e in good["feedback"])
    assert set(kinds) == {"thumbs", "rating", "outcome", "edit", "action", "label"}
    outcomes = {e["value"] for e in good["feedback"] if e["kind"] == "outcome"}
    assert outcomes == {"accepted", "accepted_with_edits", "rejected", "abandoned", "regenerated"}
    stars = [e["value"] for e in good["feedback"] if e["kind"] == "rating" and isinstance(e["value"], int)]
    assert stars and set(stars) <= {1, 2, 3, 4, 5}
    without = sum(1 for i in good["interaction"] if not feedback_by_interaction[i["id"]])
    assert 0.05 < without / len(good["interaction"]) < 0.4
    # some people change their mind: two events of one kind, the later one wins
    repeated = [
        events
        for events in feedback_by_interaction.values()
        if any(n > 1 for n in Counter(e["kind"] for e in events if e["kind"] != "edit").values())
    ]
    assert len(repeated) > 20
    for events in repeated:
        for kind in ("thumbs", "action", "rating"):
            series = sorted((e for e in events if e["kind"] == kind), key=lambda e: e["occurred_at"])
            if len(series) > 1:
                assert series[0]["value"] != series[-1]["value"]
                assert latest_feedback(events)[kind] == series[-1]["value"]


# ----------------------------------------------------------------------- personal data


def test_personal_data_of_every_kind_is_in_the_text(log):
    text = defaultdict(str)  # an interaction and its feedback, as written
    for g in log:
        if g.fault is None and g.record["type"] != "organization":
            text[g.record.get("id") or g.record["interaction_id"]] += g.line
    found = defaultdict(list)
    for g in log:
        for kind, value in g.pii:
            assert value in text[g.record["id"]], (kind, value)
            found[kind].append(value)
    assert set(found) == set(PII_KINDS)
    assert min(len(values) for values in found.values()) >= 20
    # checked by the anonymizer's own validators, written apart from the generator
    assert all(luhn_ok("".join(ch for ch in card if ch.isdigit())) for card in found["credit_card"])
    assert all(iban_ok(value) for value in found["iban"])
    assert all(
        re.fullmatch(r"\d{3}[- ]\d\d[- ]\d{4}", value) and not value.startswith(("000", "666", "9"))
        for value in found["ssn"]
    )
    assert all(re.fullmatch(r"[^@\s]+@[\w.-]+\.[a-z]+", value) for value in found["email"])
    assert any(value.startswith(("+1", "(")) for value in found["phone"])
    assert any(value.startswith(("+44", "+49", "+33", "+91", "+55", "+61")) for value in found["phone"])
    # model answers carry personal data too, not only what people type
    in_answers = Counter(
        kind
        for g in log
        if g.record["type"] == "interaction" and g.fault is None
        for kind, value in g.pii
        if value in g.record["response"]
    )
    assert {"person", "email", "phone", "address", "business"} <= set(in_answers)


# ----------------------------------------------------------------------- the command


def test_seed_command_writes_a_file_and_reports_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    counts = seed_command(n=300, seed=2)
    path = tmp_path / "home" / "seed" / "interactions-seed2-n300.jsonl"
    assert counts["path"] == str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == counts["records"] == sum(counts["by_type"].values())
    assert (
        counts["interactions"] == 300 == sum(counts["by_product"].values()) == sum(counts["by_task"].values())
    )
    assert counts["by_type"]["interaction"] == 300 + sum('"id":"ix_2_bad_' in line for line in lines)
    assert not list(path.parent.glob("*.partial"))
    explicit = seed_command(n=300, seed=2, out=tmp_path / "x.jsonl")
    assert (tmp_path / "x.jsonl").read_bytes() == path.read_bytes()
    assert {k: v for k, v in explicit.items() if k != "path"} == {
        k: v for k, v in counts.items() if k != "path"
    }


def test_seed_command_streams_to_stdout_and_main_reports_errors(monkeypatch, capsys):
    buffer = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(buffer, encoding="utf-8"))
    counts = seed_command(n=50, seed=4, out="-")
    assert counts["path"] is None
    assert buffer.getvalue().decode("utf-8").count("\n") == counts["records"]
    monkeypatch.undo()
    assert main(["--n", "-5", "--out", "-"]) == 2
    assert "n must be" in capsys.readouterr().err
