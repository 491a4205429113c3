"""The wheel carries what the commands need, and finds it with importlib.resources.

`assistant ask --mode llm` needs the prompts, `assistant eval` the question sets and the
baseline; an installed wheel has no checkout around it. The repo's top-level prompts/ ships
as assistant/prompt_files/ (a link to ../prompts in the checkout).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from assistant.prompts import REQUIRED

ROOT = Path(__file__).resolve().parents[1]


def test_prompt_files_are_the_top_level_prompts():
    from assistant.prompts import PROMPTS_DIR

    for name in REQUIRED:
        assert (PROMPTS_DIR / f"{name}.md").read_text() == \
            (ROOT / "prompts" / f"{name}.md").read_text()


def test_no_module_finds_data_by_walking_out_of_its_package():
    """Run-time code reaches its data through importlib.resources (or settings and options),
    never through paths above its own package (../prompts, ../seeds, ../../shared)."""
    walking = re.compile(r"parent\.parent|parents\[\d\]|\"shared\"|'shared'")
    offenders = []
    for package in ("assistant", "evals"):
        for path in sorted((ROOT / package).glob("*.py")):
            if path.name.startswith("fit_"):
                continue  # development scripts that rewrite the source tree's fitted files
            for no, line in enumerate(path.read_text().splitlines(), start=1):
                if walking.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (pip wheel, no dependencies) from a copy of the checkout's files."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    keep = [f for f in files if f and not f.startswith(("evals/reports/", "test-artifacts/"))
            and (ROOT / f).exists()]
    subprocess.run(["tar", "-cf", str(src / "src.tar"), *keep], cwd=ROOT, check=True)
    subprocess.run(["tar", "-xf", "src.tar"], cwd=src, check=True)
    (src / "src.tar").unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w",
                    str(out)], cwd=src, check=True, capture_output=True, timeout=300)
    (built,) = out.glob("paper_assistant-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_prompts_question_sets_and_baseline(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in REQUIRED:
        assert f"assistant/prompt_files/{name}.md" in names
    for dataset in (ROOT / "evals" / "datasets").glob("*.jsonl"):
        assert f"evals/datasets/{dataset.name}" in names
    assert "evals/baseline.json" in names
    for fitted in ("abstention.json", "claim_support.json", "survey.json"):
        assert f"assistant/{fitted}" in names
    assert not any(n.startswith(("prompts/", "seeds/", "tests/")) for n in names)


@pytest.mark.slow
def test_resources_resolve_inside_the_unpacked_wheel(wheel, tmp_path):
    """Imported from the unpacked wheel (not the checkout), every lookup stays inside it."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import evals, assistant.prompts as p\n"
        "paths = [str(p.PROMPTS_DIR), str(evals.DATASETS_DIR), str(evals.DEFAULT_BASELINE),"
        " str(evals.TEST_DATASET), *map(str, evals.DEV_DATASETS)]\n"
        "p.load('system'); p.load('answer'); p.load('source'); p.load('condense')\n"
        "assert evals.DEFAULT_BASELINE.is_file() and evals.TEST_DATASET.is_file()\n"
        "print('\\n'.join(paths))\n"
    )
    # -S: no site-packages (the checkout's editable install must not answer); the probe
    # needs only the standard library and the unpacked wheel.
    done = subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).resolve().is_relative_to(site.resolve()), line
