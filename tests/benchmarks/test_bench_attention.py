"""bench_attention: its random batch follows the contract, and bad sizes are refused."""

import numpy as np
import pytest

from benchmarks.bench_attention import ID_COUNT, main, random_features, time_attentions


def test_the_random_batch_has_real_candidates_and_a_prefix_of_behaviours() -> None:
    features = random_features(batch_size=64, candidates=7)
    seq_mask = features["seq_mask"].numpy()
    lengths = seq_mask.sum(axis=1)
    assert lengths.min() >= 1 and lengths.max() <= 50
    np.testing.assert_array_equal(seq_mask, np.arange(50)[None] < lengths[:, None])
    assert features["item_mask"].numpy().all() and features["items"].shape == (64, 7, 8)
    seq = features["seq"].numpy()
    ids = np.concatenate([features["items"].numpy().ravel(), seq[seq_mask].ravel()])
    assert ids.min() >= 1 and ids.max() < ID_COUNT
    assert (seq[~seq_mask] == 0).all()


def test_bad_sizes_are_refused_and_help_names_the_flags(capsys) -> None:
    with pytest.raises(ValueError, match="--batch-size and --repeats must be >= 1"):
        time_attentions(batch_size=0)
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--batch-size", "--repeats", "--jit-compile"))
