"""deploy/k8s/ against dagster-k8s's own config schemas, and the step Job it would make for training.

No Kubernetes cluster is reachable here, so this is as far as the Kubernetes set-up is checked:
the instance file (Dagster's instance schema, then `K8sRunLauncher.config_type()` for its run
launcher), the executor file (`k8s_job_executor`'s schema), the training step's tags (the schema
dagster-k8s applies to a `dagster-k8s/config` tag), and, deeper than the schemas (whose
`container_config` and `pod_spec_config` accept any keys), the Kubernetes Job dagster-k8s builds for
`train_locally` from all three, parsed into the Kubernetes client's own models. Each check is also
shown to refuse a broken copy: an unknown key, a wrong type.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
#: what the files read with {env: ...}, set to stand-in values where a value must be resolved
ENV = {"DAGSTER_PG_URL": "postgresql+psycopg2://u@db/dagster", "FLYWHEEL_IMAGE": "registry.example/flywheel:1",
       "FLYWHEEL_K8S_NAMESPACE": "flywheel"}


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text(encoding="utf-8"))


def _errors(config_type, value) -> list[str]:
    """dagster's own validation (what the instance, the executor and dagster-k8s run on these values)."""
    from dagster._config import validate_config

    result = validate_config(config_type, value)
    return [] if result.success else [e.message for e in result.errors]


def _launcher_errors(instance: dict[str, Any]) -> list[str]:
    from dagster_k8s import K8sRunLauncher

    assert (instance["run_launcher"]["module"], instance["run_launcher"]["class"]) == ("dagster_k8s", "K8sRunLauncher")
    return _errors(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])


def _executor_errors(executor: dict[str, Any]) -> list[str]:
    from dagster_k8s import k8s_job_executor

    return _errors(k8s_job_executor.config_schema.config_type, executor["execution"]["config"])


def _tags_errors(tags: dict[str, Any]) -> list[str]:
    from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, USER_DEFINED_K8S_JOB_CONFIG_SCHEMA

    return _errors(USER_DEFINED_K8S_JOB_CONFIG_SCHEMA, tags[USER_DEFINED_K8S_CONFIG_KEY])


def test_instance_file_fits_dagsters_instance_schema_and_the_k8s_run_launcher(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((K8S / "dagster.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on a key or type the instance refuses
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert _launcher_errors(_load("dagster.yaml")) == []
    launcher = _load("dagster.yaml")["run_launcher"]["config"]
    assert launcher["job_image"] == {"env": "FLYWHEEL_IMAGE"} and launcher["job_namespace"] == {"env": "FLYWHEEL_K8S_NAMESPACE"}
    assert launcher["env_secrets"] == ["flywheel-postgres", "flywheel-openai", "flywheel-hf"]
    assert "FLYWHEEL_EXECUTOR=k8s" in launcher["env_vars"]


def test_a_broken_instance_file_is_refused(tmp_path):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    broken = _load("dagster.yaml")
    broken["storage"] = {"postgress": broken["storage"]["postgres"]}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(DagsterInvalidConfigError, match="postgress"):
        dagster_instance_config(str(tmp_path))


def test_executor_file_fits_the_k8s_job_executor_schema():
    executor = _load("executor.yaml")
    assert _executor_errors(executor) == []
    config = executor["execution"]["config"]
    assert config["job_namespace"] == {"env": "FLYWHEEL_K8S_NAMESPACE"}
    assert config["env_secrets"] == _load("dagster.yaml")["run_launcher"]["config"]["env_secrets"]


def test_training_step_tags_fit_the_dagster_k8s_config_tag_schema():
    from dagster_k8s.job import get_user_defined_k8s_config

    tags = _load("training_step_tags.yaml")
    assert _tags_errors(tags) == []
    # what the executor does with the op's tags (Dagster stores a dict tag as JSON text)
    parsed = get_user_defined_k8s_config({k: json.dumps(v) for k, v in tags.items()})
    assert parsed.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize(
    ("name", "errors_of", "break_it", "expected"),
    [
        ("dagster.yaml", _launcher_errors, lambda c: c["run_launcher"]["config"].update(job_namespce="x"), "job_namespce"),
        ("dagster.yaml", _launcher_errors, lambda c: c["run_launcher"]["config"].update(env_secrets="flywheel-hf"),
         "env_secrets"),
        ("executor.yaml", _executor_errors, lambda c: c["execution"]["config"].update(max_concurent=4), "max_concurent"),
        ("executor.yaml", _executor_errors, lambda c: c["execution"]["config"].update(max_concurrent="four"),
         "max_concurrent"),
        ("training_step_tags.yaml", _tags_errors, lambda c: c["dagster-k8s/config"].update(container_confg={}),
         "container_confg"),
        ("training_step_tags.yaml", _tags_errors, lambda c: c["dagster-k8s/config"].update(pod_spec_config=["gpu"]),
         "pod_spec_config"),
    ],
    ids=["launcher-unknown-key", "launcher-wrong-type", "executor-unknown-key", "executor-wrong-type",
         "tags-unknown-key", "tags-wrong-type"],
)
def test_a_broken_copy_is_refused(name, errors_of, break_it, expected):
    broken = copy.deepcopy(_load(name))
    break_it(broken)
    errors = errors_of(broken)
    assert errors and any(expected in e for e in errors), errors


def _context(config: dict[str, Any]):
    """A K8sContainerContext from a launcher's or executor's processed config, as dagster-k8s builds each one."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    keys = ("image_pull_policy", "image_pull_secrets", "service_account_name", "env_config_maps", "env_secrets",
            "env_vars", "volume_mounts", "volumes", "labels", "resources", "scheduler_name", "security_context")
    k8s_config = config.get("run_k8s_config") or config.get("step_k8s_config") or {}
    return K8sContainerContext(**{k: config.get(k) for k in keys}, namespace=config.get("job_namespace"),
                               run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(k8s_config))


def _training_step_job(monkeypatch, step_tags: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes Job manifest the k8s_job_executor would create for `train_locally`.

    Follows K8sStepHandler.launch_step: the run launcher's context, merged with the executor's (its
    step_k8s_config) and then with the step's `dagster-k8s/config` tag, built by
    construct_dagster_k8s_job, which parses every part into the Kubernetes client's models.
    """
    import kubernetes
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher, k8s_job_executor
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    launcher = process_config(K8sRunLauncher.config_type(), _load("dagster.yaml")["run_launcher"]["config"]).value
    executor = process_config(k8s_job_executor.config_schema.config_type, _load("executor.yaml")["execution"]["config"]).value
    step = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config({k: json.dumps(v) for k, v in step_tags.items()}))
    context = _context(launcher).merge(_context(executor)).merge(step)
    job_config = DagsterK8sJobConfig(job_image=launcher["job_image"], dagster_home=launcher["dagster_home"],
                                     instance_config_map=launcher["instance_config_map"])
    job = construct_dagster_k8s_job(job_config, args=["dagster", "api", "execute_step"], job_name="dagster-step-train",
                                    component="step_worker", user_defined_k8s_config=context.run_k8s_config)
    assert context.namespace == "flywheel"
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def test_the_training_step_job_gets_the_gpu_secrets_and_shared_home(monkeypatch):
    job = _training_step_job(monkeypatch, _load("training_step_tags.yaml"))
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == ENV["FLYWHEEL_IMAGE"] and container["imagePullPolicy"] == "IfNotPresent"
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" == resources["requests"]["nvidia.com/gpu"]
    assert resources["requests"]["memory"] == "24Gi"  # the step's tags win over the executor's 4Gi
    assert {t["key"] for t in pod["tolerations"]} == {"nvidia.com/gpu"}
    assert [s["secretRef"]["name"] for s in container["envFrom"]] == ["flywheel-postgres", "flywheel-openai", "flywheel-hf"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLYWHEEL_HOME"] == "/mnt/flywheel" and env["FLYWHEEL_EXECUTOR"] == "k8s"
    # the step pod loads the instance file too: what it reads with {env: ...} is passed on
    assert (env["FLYWHEEL_IMAGE"], env["FLYWHEEL_K8S_NAMESPACE"]) == (ENV["FLYWHEEL_IMAGE"], "flywheel")
    assert {"name": "flywheel-home", "mountPath": "/mnt/flywheel"} in container["volumeMounts"]
    assert pod["serviceAccountName"] == "flywheel-runs"
    assert job["spec"]["backoffLimit"] == 0


def test_the_step_job_refuses_a_key_kubernetes_does_not_know(monkeypatch):
    """`container_config` passes dagster's schema whatever it holds; the Kubernetes models catch the typo."""
    tags = _load("training_step_tags.yaml")
    tags["dagster-k8s/config"]["container_config"]["resorces"] = tags["dagster-k8s/config"]["container_config"].pop("resources")
    assert _tags_errors(tags) == []
    with pytest.raises(Exception, match="resorces"):
        _training_step_job(monkeypatch, tags)


def test_the_code_location_takes_the_k8s_executor_from_the_file(monkeypatch, tmp_path):
    from pipeline.definitions import executor_from_env, k8s_executor_from_file

    monkeypatch.setenv("FLYWHEEL_EXECUTOR", "k8s")
    monkeypatch.delenv("FLYWHEEL_K8S_EXECUTOR_CONFIG", raising=False)
    assert executor_from_env().name == "k8s"
    broken = _load("executor.yaml")
    broken["execution"]["config"]["max_concurrent"] = "four"
    path = tmp_path / "executor.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="max_concurrent"):
        k8s_executor_from_file(path)
    with pytest.raises(ValueError, match="does not exist"):
        k8s_executor_from_file(tmp_path / "missing.yaml")
