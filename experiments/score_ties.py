"""How spread out and how tied trained models' scores are: ``python -m experiments.score_ties``.

A ranking metric can only be as fine as the scores it ranks. This scores the first requests of a
day (with the evaluation's in-batch negatives) with each saved model and prints, per stage:

- ``std``: the mean over requests of the standard deviation of a request's real candidates'
  scores (how far the stage has spread its scores);
- ``distinct``: the mean number of distinct scores among a request's real candidates (scores
  within float noise count as one, ``dftopk_cascade.models.ties.distinct_scores``), beside
  ``items``, the mean number of distinct items (a request can hold the same item twice, e.g.
  one of its candidates again among the in-batch negatives: such copies always tie).

A stage whose ``distinct`` is 1 scores every candidate alike (a collapsed tower); one well below
``items`` gives different items the same score. ``dftopk_cascade.models.protocol`` counts such ties
against the model.

Example::

    python -m experiments.score_ties --data /tmp/comparison/tfrecords --day 2024-01-20 \\
        --models /tmp/comparison/models/sparse-topk-uniform-t0.108-neg0-seed0
"""

import argparse
import os
from collections.abc import Sequence

import numpy as np
from dftopk_cascade.command_line.entry import add_entry_flags, run_command


def score_ties(model, features: dict) -> dict[str, dict[str, float]]:
    """Per stage of ``model``: mean per-request score std, distinct scores and distinct items.

    Args:
        model: a ``CascadeModel``.
        features: a batch of the evaluation input (``item_mask`` True on real candidates).

    Example:
        >>> from dftopk_cascade.models.cascade import build_cascade
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.models.contract import zero_features
        >>> model = build_cascade(CascadeConfig.for_examples(method="bce"))
        >>> ties = score_ties(model, zero_features(batch_size=2))  # 40 copies of one item
        >>> ties["retrieval"]["distinct"], ties["retrieval"]["items"]
        (1.0, 1.0)
    """
    from dftopk_cascade.models.ties import distinct_scores

    scores = model(features)
    mask = np.asarray(features["item_mask"])
    items = np.asarray(features["items"])
    rows = range(mask.shape[0])
    distinct_items = np.mean([len(np.unique(items[row][mask[row]], axis=0)) for row in rows])
    results = {}
    for stage in model.stages:
        values = np.asarray(scores[stage])
        results[stage] = {
            "std": float(np.mean([values[row][mask[row]].std() for row in rows])),
            "distinct": float(np.mean([distinct_scores(values[row][mask[row]]) for row in rows])),
            "items": float(distinct_items),
        }
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Prints ``score_ties`` for each model folder; returns {folder name: its result}.

    Example::

        python -m experiments.score_ties --data /tmp/tfrec --day 2024-01-20 --models /tmp/model
    """
    from dftopk_cascade.models.cascade import load_cascade
    from dftopk_cascade.models.training.data import evaluation_dataset
    from dftopk_cascade.models.training.evaluate import EVALUATION_NEGATIVES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="converted TFRecord folder")
    parser.add_argument("--day", required=True, help="the day whose first requests are scored")
    parser.add_argument("--models", nargs="+", required=True, help="model folders")
    parser.add_argument("--requests", type=int, default=256, help="requests scored")
    arguments = add_entry_flags(parser).parse_args(argv)
    features, _ = next(
        iter(
            evaluation_dataset(
                arguments.data, [arguments.day], arguments.requests, EVALUATION_NEGATIVES, 42
            )
        )
    )
    print(f"{arguments.requests} requests of {arguments.day}, {EVALUATION_NEGATIVES} negatives:")
    results = {}
    for folder in arguments.models:
        name = os.path.basename(os.path.normpath(folder))
        results[name] = score_ties(load_cascade(folder), features)
        for stage, values in results[name].items():
            print(
                f"  {name} {stage}: std {values['std']:.3g}, distinct scores "
                f"{values['distinct']:.1f} of {values['items']:.1f} distinct items"
            )
    return results


if __name__ == "__main__":
    run_command(main, "python -m experiments.score_ties")
