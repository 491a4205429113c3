"""What an eval run records about itself: commit, settings (no secrets), index, host."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

from assistant.redact import display_url


def git_commit(repo: Path | None = None) -> str | None:
    """The checked-out commit of `repo` (default: the working directory): read from .git
    when it is a plain folder, else asked of `git rev-parse HEAD`; None when neither works
    (no git, not a checkout)."""
    repo = Path.cwd() if repo is None else repo
    git = repo / ".git"
    try:
        if git.is_dir():
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head[5:]
            if (git / ref).exists():
                return (git / ref).read_text().strip()
            packed = git / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except OSError:
        pass
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10, check=True)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def safe_settings(settings) -> dict[str, Any]:
    """Settings as JSON, without secrets (API key, UI password, credentials in URLs)."""
    data = settings.model_dump(mode="json", exclude={"llm_api_key", "ui_auth"})
    for key in ("llm_base_url", "embed_base_url"):
        data[key] = display_url(data[key]) if data.get(key) else data.get(key)
    data["llm_api_key_set"] = settings.llm_api_key is not None
    return data


def run_meta(services, dataset: Path | None, options: Any) -> dict[str, Any]:
    index = services.index
    try:
        stats = index.stats()
    except Exception:  # noqa: BLE001 — stats are informative only
        stats = {}
    return {
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "mode": options.mode,
        "k": options.k or services.settings.top_k,
        "depth": options.depth,
        "dataset": _display_path(dataset) if dataset else None,
        "settings": safe_settings(services.settings),
        "index_manifest": dict(index.manifest.__dict__),
        "index_stats": {k: stats.get(k) for k in ("papers", "chunks", "embedding_model")},
        "host": {"cpus": os.cpu_count()},
    }


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def embedding_label(settings) -> str:
    """What the vectors were made with; figures of different embeddings are not compared."""
    if settings.embed_backend == "onnx":
        return f"onnx/{settings.onnx_precision}"
    return settings.embed_backend
