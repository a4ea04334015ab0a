"""The routing rule: documented hash, the same buckets as the README's TypeScript, sticky, share honoured."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from scipy.stats import binomtest

from pipeline.serving import ModelRef, Rollout, bucket, load_rollout, route
from pipeline.serving.rollout import read_rollout_file, rollout_path, write_rollout_file
from pipeline.serving.routing import threshold

CHAMPION = ModelRef("/models/champion", "huggingface", "local-aaa", "v-1")
CHALLENGER = ModelRef("ft:gpt-4.1-mini:acme::xyz", "openai", "ftjob-bbb", "v-2")

#: the README's TypeScript function, run as is under node (when node is installed)
TYPESCRIPT = """
import { createHash } from "node:crypto";
export function route(target: string, userId: string, r: Rollout): { model: string; variant: string } {
  const h = createHash("sha256").update(`${target}:${userId}`, "utf8").digest();
  const bucket = Number(h.readBigUInt64BE(0) % 10000n);
  const toChallenger = r.challenger !== null && bucket < Math.round(r.challenger_share * 10000);
  return toChallenger ? { model: r.challenger.model, variant: "challenger" } : { model: r.champion.model, variant: "champion" };
}
"""

#: buckets computed with node's crypto (`createHash("sha256")…readBigUInt64BE(0) % 10000n`)
NODE_BUCKETS = [
    ("page_builder", "u_1", 627),
    ("page_builder", "u_2", 2531),
    ("signal_relevance", "u_1", 3657),
    ("roast_voice", "user-ü-42", 7181),
    ("avatar_luna", "0", 2654),
    ("page_builder", "ümlaut@example.com", 5926),
    ("ux_review", "a:b:c", 9679),
    ("page_builder", "x" * 200, 3430),
]


def _rollout(share: float, target: str = "page_builder", challenger: ModelRef | None = CHALLENGER) -> Rollout:
    return Rollout(target, "ro_test", CHAMPION, challenger, share if challenger else 0.0, "2026-12-02T00:00:00Z")


@pytest.mark.parametrize("target, user, expected", NODE_BUCKETS)
def test_buckets_match_the_precomputed_node_values(target, user, expected):
    assert bucket(target, user) == expected


@pytest.mark.parametrize("share, expected", [(0.1, 1000), (0.5, 5000), (0.00005, 1), (0.00004, 0), (0.12345, 1235), (0.999, 9990)])
def test_threshold_rounds_like_math_round(share, expected):
    assert threshold(share) == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_typescript_snippet_routes_like_python(tmp_path):
    """The README's snippet, stripped of its types, run by node on 2,000 users and three shares."""
    import re

    js = TYPESCRIPT.replace('import { createHash } from "node:crypto";', 'const { createHash } = require("node:crypto");')
    js = js.replace("export function", "function")
    js = re.sub(r"\(target: string, userId: string, r: Rollout\): \{ model: string; variant: string \}", "(target, userId, r)", js)
    users = [f"user_{i}" for i in range(2000)]
    cases = [_rollout(share).as_dict() for share in (0.1, 0.5, 0.12345)] + [_rollout(0.0, challenger=None).as_dict()]
    script = js + f"""
const users = {json.dumps(users)}; const cases = {json.dumps(cases)};
console.log(JSON.stringify(cases.map(r => users.map(u => route("page_builder", u, r).variant))));
"""
    (tmp_path / "route.js").write_text(script, encoding="utf-8")
    out = subprocess.run(["node", str(tmp_path / "route.js")], capture_output=True, text=True, check=True, timeout=60)
    from_node = json.loads(out.stdout)
    for rollout, variants in zip(cases, from_node, strict=True):
        python = [route("page_builder", u, Rollout.from_dict(rollout)).variant for u in users]
        assert python == variants


def test_route_is_sticky_and_returns_the_models():
    rollout = _rollout(0.5)
    first = {u: route("page_builder", u, rollout) for u in (f"u{i}" for i in range(200))}
    again = {u: route("page_builder", u, rollout) for u in first}
    assert first == again
    assert {r.variant for r in first.values()} == {"champion", "challenger"}
    for user, routed in first.items():
        model, variant = routed
        assert model == (CHALLENGER if variant == "challenger" else CHAMPION)
        assert (variant == "challenger") == (bucket("page_builder", user) < 5000)


def test_a_growing_share_only_adds_users():
    users = [f"u{i}" for i in range(3000)]
    on = {share: {u for u in users if route("page_builder", u, _rollout(share)).variant == "challenger"} for share in (0.1, 0.5)}
    assert on[0.1] < on[0.5]
    assert all(route("page_builder", u, _rollout(0.0, challenger=None)).variant == "champion" for u in users[:200])


@pytest.mark.parametrize("share", [0.1, 0.5, 0.02])
def test_the_share_is_honoured_within_sampling_error(share):
    n = 20_000
    hits = sum(route("signal_relevance", f"user-{i}", _rollout(share, "signal_relevance")).variant == "challenger" for i in range(n))
    assert binomtest(hits, n, share).pvalue > 0.001, hits / n


def test_targets_hash_independently():
    users = [f"u{i}" for i in range(4000)]
    a = {u for u in users if route("page_builder", u, _rollout(0.5)).variant == "challenger"}
    b = {u for u in users if route("roast_voice", u, _rollout(0.5, "roast_voice")).variant == "challenger"}
    both = len(a & b)  # independent halves overlap on about a quarter of the users
    assert binomtest(both, len(users), 0.25).pvalue > 0.001


def test_route_refuses_bad_input():
    with pytest.raises(ValueError, match="user id"):
        route("page_builder", "", _rollout(0.1))
    with pytest.raises(ValueError, match="not 'page_builder'"):
        route("page_builder", "u", _rollout(0.1, "roast_voice"))


def test_load_rollout_reads_the_file_and_sees_changes():
    with pytest.raises(FileNotFoundError, match="materialize production_model"):
        load_rollout("page_builder")
    path = write_rollout_file(_rollout(0.1))
    assert path == rollout_path("page_builder") and path.parent.name == "rollouts"
    assert load_rollout("page_builder") == _rollout(0.1)
    assert route("page_builder", "u_1").variant == "challenger"  # bucket 627 < 1000
    write_rollout_file(Rollout("page_builder", "ro_2", CHAMPION, None, 0.0, "2026-12-02T01:00:00Z"))
    assert load_rollout("page_builder").rollout_id == "ro_2"
    assert route("page_builder", "u_1").variant == "champion"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("champion"), "champion"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d["champion"].pop("backend"), "backend"),
        (lambda d: d.update(challenger_share="10%"), "challenger_share"),
        (lambda d: d.update(challenger=None), "no challenger"),
        (lambda d: d.update(challenger_share=1.0), r"\(0, 1\)"),
        (lambda d: d["challenger"].update(weight=3), "unknown field"),
    ],
)
def test_a_malformed_rollout_file_names_the_field(tmp_path, mutate, message):
    data = _rollout(0.1).as_dict()
    mutate(data)
    path = tmp_path / "page_builder.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        read_rollout_file(path)
    assert str(path) in str(err.value)


def test_the_file_format_is_the_documented_one():
    data = json.loads(write_rollout_file(_rollout(0.1)).read_text(encoding="utf-8"))
    assert set(data) == {"schema_version", "target", "rollout_id", "champion", "challenger", "challenger_share", "updated_at"}
    assert set(data["champion"]) == {"model", "backend", "job_id", "dataset_version"}
