"""Pools: with the project's one slot per pool, a second run's local_training step waits for the first one's.

The instance is Postgres-backed, as in production (`deploy/`). The second run starts once the first
holds the slot: two steps whose first asks land in the same instant can both get it in Dagster 1.13,
on SQLite (CI) and on Postgres (seen here under load), so that case is stated in the README, not tested.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pipeline.defs.fine_tune_job import submit_hosted, train_locally

ROOT = Path(__file__).resolve().parents[1]

RUN = textwrap.dedent('''
    import sys, time, dagster as dg

    @dg.op(pool="local_training")
    def train():
        began = time.time(); open(sys.argv[2] + ".began", "w").close(); time.sleep(2)
        open(sys.argv[2], "w").write(f"{began} {time.time()}")

    @dg.job
    def one_training():
        train()

    assert one_training.execute_in_process(instance=dg.DagsterInstance.from_config(sys.argv[1])).success
''')


def test_the_training_and_submission_steps_name_their_pools():
    assert train_locally.pool == "local_training" and submit_hosted.pool == "hosted_submission"
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())["concurrency"]
    assert config["pools"]["default_limit"] == 1 and config["runs"]["max_concurrent_runs"] >= 1


@pytest.mark.postgres
def test_two_runs_share_one_training_slot(tmp_path, postgres_url):
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())["concurrency"]
    instance_yaml = {"concurrency": {"pools": config["pools"]}, "storage": {"postgres": {"postgres_url": postgres_url}}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    script = tmp_path / "run.py"
    script.write_text(RUN)
    # the instance's schema and the pool's row are created here, once, as `dagster instance migrate` and the
    # first run do: two processes creating either at once race ("relation runs already exists", a duplicate
    # key on concurrency_limits), which is not what this test is about
    import dagster as dg

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_runs_count() == 0
        assert instance.event_log_storage.initialize_concurrency_limit_to_default("local_training")
        assert instance.event_log_storage.get_concurrency_info("local_training").slot_count == 1
    # the second run starts once the first holds the slot: Dagster 1.13 can hand one slot to two steps whose
    # first asks land in the same instant (seen twice, steps started within 10 ms), which no config prevents
    def start(i):
        return subprocess.Popen([sys.executable, str(script), str(tmp_path), str(tmp_path / f"span{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    procs = [start(0)]
    deadline = time.monotonic() + 120
    while not (tmp_path / "span0.began").exists() and procs[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.append(start(1))
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    (a0, a1), (b0, b1) = sorted(tuple(map(float, (tmp_path / f"span{i}").read_text().split())) for i in range(2))
    assert b0 >= a1, f"the steps overlapped: {a0:.2f}-{a1:.2f} and {b0:.2f}-{b1:.2f}"
