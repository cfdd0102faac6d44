"""Export a trained cascade for TF Serving: ``python -m dftopk_cascade.serving.export``.

    python -m dftopk_cascade.serving.export --model-dir MODEL_DIR --data TFREC_DIR --export-dir
    EXPORT

writes ``EXPORT/retrieval/<V>/``, ``EXPORT/prerank/<V>/`` and ``EXPORT/rank/<V>/``, SavedModels
with the ``serving_default`` signatures of docs/CONTRACTS.md
(``dftopk_cascade.serving.signatures``). The cascade is rebuilt from ``MODEL_DIR`` (``config.json``
+ trained weights, ``dftopk_cascade.models.cascade.load_cascade``). Retrieval holds the user tower
and an exact index over the whole item corpus (every distinct item of the converted data,
``dftopk_cascade.serving.export.item_corpus``) embedded by the item tower; ``top_n`` and ``k`` are
request inputs (signature input names, kept for existing exports), with defaults
(``--retrieval-keep``, ``--prerank-keep``, ``--rank-keep``) that TF Serving feeds when a request
leaves them out. Every graph is checked for ops stock TF Serving lacks before it is published; the
three are staged, checked and then published together as one version with ``EXPORT/cascade.json``
naming it (``dftopk_cascade.serving.export.publish.publish_cascade``): all or none, and a reader of
the latest version never sees a mixed set. Each model carries a TF Serving warm-up file
(``assets.extra/tf_serving_warmup_requests``, ``dftopk_cascade.serving.export.warmup``). Versions
are never overwritten; what a killed export left is removed by the next one.

The command writes only into an export folder it owns (``dftopk_cascade.pipelines.owned_folder``: a
marker, ``.dftopk-export.json``, listing what it published, and a lock, so two exports never write
one folder at once); a non-empty folder without that marker is refused untouched. A full disk is one
line naming the folder and its free space (``dftopk_cascade.serving.export.disk_full``), with
nothing half-written left behind.

Example:
    >>> import tempfile
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade, toy_corpus
    >>> model = toy_cascade()  # or load_cascade(MODEL_DIR): a folder of models.training.train
    >>> corpus = toy_corpus()  # or collect_item_corpus(DATA_DIR): every item of the data
    >>> export_cascade(model, corpus, tempfile.mkdtemp())
    {'retrieval': '.../retrieval/1', 'prerank': '.../prerank/1', 'rank': '.../rank/1'}
"""

import argparse
import os
import shutil
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags
from dftopk_cascade.models.cascade import CascadeModel, load_cascade
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.owned_folder import owned_folder
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.cascade_inference import (
    DEFAULT_SIZES,
    CascadeSizes,
    add_size_flags,
    check_sizes,
)
from dftopk_cascade.serving.export.disk_full import full_disk_reported
from dftopk_cascade.serving.export.item_corpus import collect_item_corpus
from dftopk_cascade.serving.export.item_index import ExactItemIndex
from dftopk_cascade.serving.export.publish import (
    check_version_free,
    clean_stale_exports,
    next_version,
    publish_cascade,
    stage_version,
)
from dftopk_cascade.serving.export.servables import RetrievalServable, ScorerServable
from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary
from dftopk_cascade.serving.export.warmup import write_warmup_requests
from dftopk_cascade.serving.export_layout import CASCADE_MANIFEST

EMBEDDING_BATCH = 8192
#: The writer named in the export folder's marker (``dftopk_cascade.pipelines.owned_folder``).
EXPORT_WRITER = "dftopk_cascade.serving.export"


def embed_corpus(model: CascadeModel, corpus: np.ndarray, vocabulary: FeatureVocabulary):
    """float32 [items, d]: the item tower's vectors of the corpus rows, in batches.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade, toy_corpus
        >>> model = toy_cascade()
        >>> config = model.cascade_config
        >>> vocabulary = FeatureVocabulary.from_schema(config.columns, config.vocab_sizes)
        >>> embed_corpus(model, toy_corpus(5), vocabulary).shape
        (5, 8)
    """
    vectors = [
        model.retrieval.item_embeddings(
            vocabulary.clip(sig.ITEMS, tf.constant(corpus[start : start + EMBEDDING_BATCH]))
        ).numpy()
        for start in range(0, len(corpus), EMBEDDING_BATCH)
    ]
    return np.concatenate(vectors).astype(np.float32)


def cascade_servables(
    model: CascadeModel, corpus: np.ndarray, sizes: CascadeSizes = DEFAULT_SIZES
) -> dict[str, tf.Module]:
    """The retrieval, prerank and rank servables of a trained cascade over an item corpus;
    ``sizes`` are the signatures' defaults of ``top_n`` (retrieval: ``retrieval_keep``) and ``k``
    (prerank: ``prerank_keep``, rank: ``rank_keep``).

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade, toy_corpus
        >>> sorted(cascade_servables(toy_cascade(), toy_corpus()))
        ['prerank', 'rank', 'retrieval']
    """
    config = model.cascade_config
    if not config.rank_stage:
        raise ValueError(
            "this cascade was trained without a ranking stage (rank_stage false in its "
            "config.json, --no-rank-stage): the serving cascade needs retrieval, pre-ranking and "
            "ranking; train with the ranking stage to export it"
        )
    vocabulary = FeatureVocabulary.from_schema(config.columns, config.vocab_sizes)
    corpus = np.asarray(corpus, np.int32)
    if corpus.ndim != 2 or corpus.shape[1] != sig.ITEM_WIDTH:
        raise ValueError(f"the corpus must be int [items, {sig.ITEM_WIDTH}], got {corpus.shape}")
    index = ExactItemIndex(embed_corpus(model, corpus, vocabulary), corpus, name="item_index")
    retrieval = model.retrieval
    return {
        sig.RETRIEVAL: RetrievalServable(
            retrieval.query_embeddings, retrieval.variables, index, vocabulary, sizes.retrieval_keep
        ),
        sig.PRERANK: ScorerServable(
            model.prerank, model.prerank.variables, vocabulary, sizes.prerank_keep
        ),
        sig.RANK: ScorerServable(model.rank, model.rank.variables, vocabulary, sizes.rank_keep),
    }


def export_cascade(
    model: CascadeModel,
    corpus: np.ndarray,
    export_dir: str,
    version: int | None = None,
    sizes: CascadeSizes = DEFAULT_SIZES,
) -> dict[str, str]:
    """Writes the three SavedModels as ``version`` (default: the next free one); returns paths.
    ``sizes`` are the signatures' defaults (``cascade_servables``) and the shapes of each model's
    TF Serving warm-up request (``dftopk_cascade.serving.export.warmup``).

    Raises ``VersionExistsError`` before writing anything when any of the three versions exists.
    A failed export (e.g. a full disk) leaves nothing: its staged folders are removed, and so are
    the model folders it created.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import (
        ...     toy_cascade, toy_cascade_export, toy_corpus)
        >>> export_dir = toy_cascade_export()  # holds version 1
        >>> export_cascade(toy_cascade(), toy_corpus(), export_dir, version=1)
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.export.publish.VersionExistsError: .../retrieval/1 exists; export
        never...
    """
    clean_stale_exports(export_dir, sig.MODEL_NAMES)
    version = next_version(export_dir, sig.MODEL_NAMES) if version is None else version
    for name in sig.MODEL_NAMES:
        check_version_free(export_dir, name, version)
    new_model_dirs = [
        os.path.join(export_dir, name)
        for name in sig.MODEL_NAMES
        if not os.path.exists(os.path.join(export_dir, name))
    ]
    staged: dict[str, str] = {}
    try:
        for name, servable in cascade_servables(model, corpus, sizes).items():
            staged[name] = stage_version(export_dir, name, version, servable, servable.signatures())
            write_warmup_requests(staged[name], name, sizes)
        return publish_cascade(export_dir, version, staged)
    finally:
        for path in staged.values():  # the staged folders of a run that failed
            shutil.rmtree(path, ignore_errors=True)
        for path in new_model_dirs:  # left empty by a run that failed
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.serving.export",
        description="Export a trained cascade (python -m dftopk_cascade.models.training.train) as "
        "TF Serving "
        "SavedModels: EXPORT/{retrieval,prerank,rank}/<version>/.",
    )
    parser.add_argument(
        "--model-dir", required=True, help="trained model folder (config.json + weights/)"
    )
    parser.add_argument(
        "--data",
        dest="data_dir",
        help="converted TFRecord folder (python -m dftopk_cascade.pipelines.convert) whose "
        "distinct items form "
        "the retrieval corpus; its vocabulary must be the model's (default: the folder the "
        "model was trained on, recorded in MODEL_DIR/data.json)",
    )
    parser.add_argument(
        "--days",
        nargs="+",
        help="days of --data whose items form the corpus (default: every converted day)",
    )
    parser.add_argument(
        "--export-dir", required=True, help="TF Serving base folder (one subfolder per model)"
    )
    parser.add_argument(
        "--version",
        type=int,
        help="version number to write (default: one more than the highest present); an "
        "existing version is never overwritten",
    )
    add_size_flags(parser, "when a request omits it (the signature's default)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    """Runs the export (see ``--help``); prints and returns the written folders.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.models.cascade import build_cascade
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.pipelines.data_schema import read_data_schema
        >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
        >>> from dftopk_cascade.serving.export.toy_servables import TOY_LAYERS
        >>> folder = tempfile.mkdtemp()
        >>> data_dir = simulated_tfrecords(folder, days=2, requests_per_day=64)
        >>> schema = read_data_schema(data_dir)
        >>> config = CascadeConfig.from_schema(schema, method="bce", **TOY_LAYERS)
        >>> model_dir = ModelDir(f"{folder}/model")  # as models.training.train leaves it:
        >>> model_dir.save_weights(build_cascade(config)); config.save(model_dir.config_path)
        >>> written = main(["--model-dir", model_dir.root, "--data", data_dir,
        ...                 "--export-dir", f"{folder}/cli", "--version", "2"])
        item corpus: ... items
        retrieval: .../cli/retrieval/2
        prerank: .../cli/prerank/2
        rank: .../cli/rank/2
    """
    args = add_entry_flags(_parser()).parse_args(argv)
    sizes = CascadeSizes(args.retrieval_keep, args.prerank_keep, args.rank_keep)
    check_sizes(*sizes)
    with (
        full_disk_reported(args.export_dir),
        owned_folder(args.export_dir, kind="export", writer=EXPORT_WRITER) as folder,
    ):
        written = _export(args, sizes)
        folder.record(
            *(os.path.relpath(path, args.export_dir) for path in written.values()),
            CASCADE_MANIFEST,
        )
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


def _export(args: argparse.Namespace, sizes: CascadeSizes) -> dict[str, str]:
    """The export of ``main`` into the export folder it owns and has locked."""
    if args.version is not None:
        clean_stale_exports(args.export_dir, sig.MODEL_NAMES)  # a killed run's half version
        for name in sig.MODEL_NAMES:
            check_version_free(args.export_dir, name, args.version)
    data_dir = args.data_dir or ModelDir(args.model_dir).recorded_data()
    if data_dir is None:
        raise ValueError(
            f"{args.model_dir} records no training data folder (data.json); pass --data"
        )
    model = load_cascade(args.model_dir)
    schema = read_data_schema(data_dir)
    model.cascade_config.check_data_schema(schema, data_dir)
    corpus = collect_item_corpus(data_dir, args.days, schema)
    written = export_cascade(model, corpus, args.export_dir, args.version, sizes)
    print(f"item corpus: {len(corpus)} items")
    return written
