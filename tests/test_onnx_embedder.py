"""The ONNX Runtime embedder: real bundled MiniLM, real export into a temporary cache.

The export (fp32 + int8, ~15 s) happens once for the module; the PyTorch reference is a
sentence-transformers embedder of the same bundled weights (the session ``embedder`` fixture
of conftest.py is the default backend, which is ONNX itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.corpus import read_corpus
from assistant.embeddings import make_embedder, model_identity
from assistant.errors import AssistantError
from assistant.onnx_embedder import FILES, OnnxEmbedder, plan_batches, resolve_model
from assistant.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DIM = 384


def _settings(**overrides) -> Settings:
    return Settings(_env_file=None, data_dir=Path("unused"), embed_backend="onnx", **overrides)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("onnx-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("ASSISTANT_ONNX_CACHE", str(cache))
    patch.delenv("ASSISTANT_ONNX_PRECISION", raising=False)
    yield cache
    patch.undo()


@pytest.fixture(scope="module")
def int8(onnx_cache) -> OnnxEmbedder:
    return OnnxEmbedder(_settings(), precision="int8").load()


@pytest.fixture(scope="module")
def fp32(onnx_cache) -> OnnxEmbedder:
    return OnnxEmbedder(_settings(), precision="fp32").load()


@pytest.fixture(scope="module")
def torch_reference():
    from assistant.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(Settings(_env_file=None, embed_backend="local"))


@pytest.fixture(scope="module")
def abstracts(seeds_dir) -> list[str]:
    papers = read_corpus([seeds_dir]).papers
    texts = [f"{p.title}\n{p.abstract}" for p in papers[:: max(1, len(papers) // 20)][:20]]
    # One text past the model's 256 word pieces: truncation must match sentence-transformers.
    return [*texts, " ".join([papers[0].abstract] * 4)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_export_lands_in_the_cache_folder(int8, fp32, onnx_cache):
    assert int8.model_path.parent == fp32.model_path.parent
    assert int8.model_path.parent.parent == onnx_cache
    assert int8.model_path.parent.name.startswith("all-MiniLM-L6-v2-")
    assert {p.name for p in int8.model_path.parent.glob("*.onnx")} == set(FILES.values())
    assert not list(onnx_cache.rglob("*.tmp*")), "temporary export files left behind"
    meta = json.loads((int8.model_path.parent / "export.json").read_text())
    assert meta["fp32_min_cosine_vs_torch"] >= 0.9999


def test_default_is_fp32_and_name_matches_the_local_backend(onnx_cache):
    # fp32: the same vectors on every x86-64 CPU (int8 differs between AVX2 and VNNI).
    embedder = make_embedder(_settings())
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.precision == "fp32"
    local = Settings(_env_file=None, embed_backend="local")
    assert embedder.name == model_identity(local) == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dim == DIM


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_unit_norm_float32_rows(precision, request, abstracts):
    embedder = request.getfixturevalue(precision)
    vectors = embedder.embed(abstracts[:5])
    assert vectors.shape == (5, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_empty_list(precision, request):
    vectors = request.getfixturevalue(precision).embed([])
    assert vectors.shape == (0, DIM) and vectors.dtype == np.float32


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_original_order_with_mixed_lengths(precision, request, abstracts):
    embedder = request.getfixturevalue(precision)
    texts = ["graph neural networks", abstracts[0], "ok", abstracts[-1], abstracts[3][:120],
             "protein folding", abstracts[7]]
    together = embedder.embed(texts)
    alone = np.concatenate([embedder.embed([t]) for t in texts])
    # fp32: only padding noise; int8: one text per run, so the very same vector.
    assert _cosines(together, alone).min() > 0.99999
    assert len({tuple(np.round(v, 4)) for v in together}) == len(texts)


def test_batches_group_similar_lengths():
    lengths = np.array([5, 200, 7, 180, 6, 190, 250, 4])
    batches = plan_batches(lengths, max_batch=3, token_budget=600)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [lengths[b].tolist() for b in batches] == [[250, 200], [190, 180, 7], [6, 5, 4]]


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_agrees_with_sentence_transformers(precision, request, abstracts, torch_reference):
    onnx_vectors = request.getfixturevalue(precision).embed(abstracts)
    reference = torch_reference.embed(abstracts)
    cos = _cosines(onnx_vectors, reference)
    assert cos.min() >= (0.99 if precision == "int8" else 0.9999), cos.round(4).tolist()
    # The bundled model is the same for both: top neighbours agree.
    assert (np.argsort(-onnx_vectors @ onnx_vectors.T)[:, 1]
            == np.argsort(-reference @ reference.T)[:, 1]).mean() >= 0.9


def test_second_construction_reuses_the_export(int8, fp32):
    files = {p: p.stat().st_mtime_ns for p in (int8.model_path, fp32.model_path)}
    again = OnnxEmbedder(_settings(), precision="int8")
    vectors = again.embed(["reused export"])
    assert again.model_path == int8.model_path
    assert {p: p.stat().st_mtime_ns for p in files} == files
    assert np.allclose(vectors, int8.embed(["reused export"]), atol=1e-6)


QUERY_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from assistant.onnx_embedder import OnnxEmbedder
from assistant.settings import Settings
embedder = OnnxEmbedder(Settings(_env_file=None, embed_backend="onnx", onnx_precision="int8"))
vector = embedder.embed(["retrieval augmented generation for scientific papers"])
print(json.dumps({"seconds": time.perf_counter() - started, "shape": list(vector.shape),
                  "vector": vector[0].tolist(), "torch": "torch" in sys.modules,
                  "st": "sentence_transformers" in sys.modules}))
"""


def test_query_in_a_fresh_process_does_not_import_torch(int8, onnx_cache):
    done = subprocess.run([sys.executable, "-c", QUERY_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["torch"] and not result["st"]
    assert result["shape"] == [1, DIM]
    expected = int8.embed(["retrieval augmented generation for scientific papers"])[0]
    assert np.allclose(result["vector"], expected, atol=1e-5)
    assert result["seconds"] < 10, result["seconds"]  # ~0.5 s on an idle 2-core CPU


def test_local_sentence_transformers_folder(tmp_path, int8):
    folder = tmp_path / "my-minilm"
    folder.symlink_to(int8.spec.root, target_is_directory=True)
    spec = resolve_model(_settings(embed_model=str(folder)))
    assert (spec.name, spec.dim, spec.pooling, spec.max_seq_length) == ("my-minilm", DIM,
                                                                        "mean", 256)
    assert spec.fingerprint() == int8.spec.fingerprint()  # same files, same export
    embedder = OnnxEmbedder(_settings(embed_model=str(folder)))
    assert embedder.name == f"sentence-transformers:{folder}"


def test_unsupported_models_are_clear_errors(tmp_path, onnx_cache):
    with pytest.raises(AssistantError, match="never downloaded"):
        OnnxEmbedder(_settings(embed_model="sentence-transformers/all-mpnet-base-v2"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(AssistantError, match="modules.json"):
        OnnxEmbedder(_settings(embed_model=str(tmp_path / "plain")))
    with pytest.raises(AssistantError, match="precision"):
        OnnxEmbedder(_settings(), precision="fp16")


def test_token_vectors_come_from_the_same_pass_and_match_pytorch(fp32, torch_reference,
                                                                 abstracts):
    """embed_tokens (coverage's soft_cover) gives embed()'s vectors, and per text one unit
    vector per word piece with its span in the text (no [CLS]/[SEP]), the same on both
    backends."""
    texts = ["Which optimizers cut memory use for LLM training?", abstracts[0]]
    vectors, tokens = fp32.embed_tokens(texts)
    np.testing.assert_allclose(vectors, fp32.embed(texts), atol=1e-5)
    ref_vectors, ref_tokens = torch_reference.embed_tokens(texts)
    assert _cosines(vectors, ref_vectors).min() > 0.999
    first = tokens[0]
    words = [texts[0][a:b] for a, b in first.spans]
    assert words[0] == "Which" and words[-1] == "?" and "memory" in words
    assert first.vectors.shape == (len(first.spans), DIM)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    for mine, ref in zip(tokens, ref_tokens, strict=True):
        assert mine.spans == ref.spans
        assert _cosines(mine.vectors, ref.vectors).min() > 0.999
    assert fp32.embed_tokens([])[1] == []
