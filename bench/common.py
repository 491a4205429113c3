"""Shared helpers for benchmarks: percentiles, peak RSS of a subprocess, JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_INDEX = Path(tempfile.gettempdir()) / "paper-assistant-bench-index"
BIN = Path(sys.executable).parent


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (evals.metrics.percentile: linear, numpy's default), 2 decimals."""
    from evals.metrics import percentile

    value = percentile(values, p)
    return 0.0 if value is None else round(value, 2)


def run_timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS MB of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         cwd=ROOT, check=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far (KB on Linux).
    return wall, max(peak, before) / 1024, out.stdout


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def write(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def golden(path: Path = ROOT / "evals" / "datasets" / "dev.jsonl") -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the seeds index shared by benchmarks ---------------------------------------------


def default_data_dir() -> Path:
    """The shared bench index, one per embedding backend (the manifest does not record which
    backend embedded it, and a PyTorch-built index queried with ONNX int8 vectors ranks
    slightly differently)."""
    from assistant.settings import Settings

    return Path(f"{BENCH_INDEX}-{Settings().embed_backend}")


def setup_info(data_dir: Path) -> dict:
    """What the figures depend on: data dir, embedding backend, commit."""
    from assistant.settings import Settings
    from evals.run import git_commit

    return {"data_dir": str(data_dir), "embed_backend": Settings().embed_backend,
            "git_commit": git_commit()}


def ensure_seed_index(data_dir: Path) -> dict | None:
    """Ingest seeds/ into data_dir unless it already holds an index; the ingest's figures or
    None when an index was reused."""
    from assistant.errors import IndexMissing
    from assistant.index import Index
    from assistant.settings import Settings

    try:
        index = Index.open(Settings(_env_file=None, data_dir=data_dir))
        try:
            papers = index.stats()["papers"]
        finally:
            index.close()
        if papers > 0:
            print(f"reusing the index in {data_dir} ({papers} papers)")
            return None
    except IndexMissing:
        pass
    print(f"indexing seeds/ into {data_dir} (once; later runs reuse it)...", flush=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    wall, rss, _ = run_timed([str(BIN / "assistant"), "ingest", "-q"],
                             {"ASSISTANT_DATA_DIR": str(data_dir)})
    print(f"ingest: {wall:.1f} s")
    return {"seconds": round(wall, 1), "peak_rss_mb": round(rss)}


def add_data_dir_option(ap) -> None:
    ap.add_argument("--data-dir", type=Path,
                    help=f"index of seeds/, built there when missing (default "
                         f"{BENCH_INDEX}-<embed backend>, reused by later runs)")


def seed_index(args) -> tuple[Path, dict]:
    """The data dir from --data-dir (or the shared default), indexed; and the run's setup
    facts (with the ingest's figures when it had to be built)."""
    data_dir = (args.data_dir or default_data_dir()).resolve()
    out: dict = setup_info(data_dir)
    built = ensure_seed_index(data_dir)
    if built:
        out["ingest"] = built
    return data_dir, out
