"""Train one request with a local backend in this process and print its final status as JSON.

The training benches run it as a child process (as the bare scripts they compare against run), so
each side's wall time and peak RSS are its own: `python bench/train_backend.py BACKEND REQUEST.json`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.backends.base import FineTuneRequest  # noqa: E402 - after sys.path


def main(backend_name: str, request_path: str) -> None:
    if backend_name == "huggingface":
        from pipeline.backends.huggingface.backend import HuggingFaceBackend as Backend
    else:
        from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend as Backend
    request = FineTuneRequest(**json.loads(Path(request_path).read_text(encoding="utf-8")))
    started = time.monotonic()
    status = Backend().train(request)
    out = asdict(status)
    out["state"] = status.state.value
    out["wall_s"] = time.monotonic() - started
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
