"""Does another pre-ranking attention change the methods' ordering? Its runs against the default's.

A variant with ``prerank_attention`` (``--prerank-attention din``: DIN's target attention, the
official code's form) trains each method at the temperature, training negatives, embedding start,
length and seed of a run of the default (bilinear) attention. Pairing the two runs of each method
and seed gives the attention's effect on that method (the paired test difference), and ordering
the methods by mean test joint recall over the seeds both attentions trained, once per attention,
answers whether the attention changes the ordering (``attention_sections``; the report of the
variant ends with it: ``experiments.comparison_report``). The section also sets the
variant's ordering against the default's over all its seeds, paired or not (its best
estimate), and names each pair of methods the two rank the other way round, with both
gaps, so that a reader can weigh a swap against the seeds' spread.

Example:
    >>> def record(method, value, attention=None):
    ...     key = {"method": method, "temperature": 0.1, "steps": 10, "seed": 0,
    ...            "prerank_attention": attention}
    ...     return {"key": key, "test": {"joint_recall": value}}
    >>> default = [record("dftopk", 0.5), record("lapsum", 0.6)]
    >>> din = [record("dftopk", 0.55, "din"), record("lapsum", 0.52, "din")]
    >>> orderings(attention_pairs(din, default))
    (['lapsum', 'dftopk'], ['dftopk', 'lapsum'])
"""

import dataclasses
import statistics
from collections.abc import Iterable, Mapping, Sequence

from experiments.learning_curves import Group, difference_summary, run_group
from experiments.report.report_document import ReportSection
from experiments.run_records import RunKey

#: {seed: (test joint recall, default attention; test joint recall, the variant's attention)}.
Pairs = dict[int, tuple[float, float]]

COLUMNS: tuple[str, ...] = (
    "method",
    "temperature",
    "training negatives",
    "embedding start",
    "paired seeds",
    "test joint recall, default attention (mean)",
    "test joint recall, this attention (mean)",
    "paired Δ this - default (mean ± std)",
    "higher with this attention on",
    "rank, default attention",
    "rank, this attention",
)


def attention_pairs(
    variant_records: Iterable[Mapping], default_records: Iterable[Mapping]
) -> dict[Group, Pairs]:
    """Each variant run paired with the default-attention run that differs from it only in
    the attention; variant runs without such a twin are left out.

    Example:
        >>> key = {"method": "bce", "seed": 1, "steps": 10}
        >>> pairs = attention_pairs(
        ...     [{"key": {**key, "prerank_attention": "din"}, "test": {"joint_recall": 0.3}}],
        ...     [{"key": key, "test": {"joint_recall": 0.2}}])
        >>> pairs
        {('bce', None, 0, 'uniform'): {1: (0.2, 0.3)}}
    """
    default_recall = {
        RunKey.from_dict(record["key"]): record["test"]["joint_recall"]
        for record in default_records
    }
    pairs: dict[Group, Pairs] = {}
    for record in variant_records:
        key = RunKey.from_dict(record["key"])
        twin = dataclasses.replace(key, prerank_attention=None)
        if twin not in default_recall:
            continue
        pair = (default_recall[twin], record["test"]["joint_recall"])
        pairs.setdefault(run_group(key), {})[key.seed] = pair
    return dict(sorted(pairs.items(), key=lambda item: item[0][0]))


def orderings(pairs: Mapping[Group, Pairs]) -> tuple[list[str], list[str]]:
    """The methods, highest mean test joint recall first, under the default attention and
    under the variant's, each over the same paired seeds.

    Example:
        >>> orderings({("a", None, 0, "uniform"): {0: (0.2, 0.5)},
        ...            ("b", None, 0, "uniform"): {0: (0.3, 0.4)}})
        (['b', 'a'], ['a', 'b'])
    """
    means = paired_means(pairs)
    return tuple(ranked({method: pair[side] for method, pair in means.items()}) for side in (0, 1))


def ranked(means: Mapping[str, float]) -> list[str]:
    """The methods, highest mean first.

    Example:
        >>> ranked({"a": 0.2, "b": 0.5})
        ['b', 'a']
    """
    return sorted(means, key=lambda method: -means[method])


def paired_means(pairs: Mapping[Group, Pairs]) -> dict[str, tuple[float, float]]:
    """Each method's mean test joint recall over its paired seeds: (default's, variant's).

    Example:
        >>> paired_means({("a", None, 0, "uniform"): {0: (0.2, 0.5), 1: (0.4, 0.5)}})
        {'a': (0.30000000000000004, 0.5)}
    """
    return {
        group[0]: tuple(
            statistics.fmean(pair[side] for pair in by_seed.values()) for side in (0, 1)
        )
        for group, by_seed in pairs.items()
    }


def all_seed_means(
    pairs: Mapping[Group, Pairs], default_records: Iterable[Mapping]
) -> dict[str, tuple[float, int]]:
    """Each paired method's (mean test joint recall, seeds) under the default attention over
    all its seeds, paired or not: the default's ordering at its best estimate.
    ``default_records`` are the default attention's runs of the variant's length and dataset
    (a group holds no seed, length or dataset).

    Example:
        >>> key = {"method": "bce", "steps": 10}
        >>> all_seed_means({("bce", None, 0, "uniform"): {0: (0.2, 0.3)}},
        ...                [{"key": {**key, "seed": seed}, "test": {"joint_recall": value}}
        ...                 for seed, value in ((0, 0.2), (1, 0.4))])
        {'bce': (0.30000000000000004, 2)}
    """
    recalls: dict[Group, list[float]] = {group: [] for group in pairs}
    for record in default_records:
        group = run_group(RunKey.from_dict(record["key"]))
        if group in recalls:
            recalls[group].append(record["test"]["joint_recall"])
    return {group[0]: (statistics.fmean(values), len(values)) for group, values in recalls.items()}


def swapped_pairs(
    default_means: Mapping[str, float], variant_means: Mapping[str, float]
) -> list[str]:
    """The pairs of methods the two orderings rank the other way round, in words, each with
    its gap under both: the variant's order first.

    Example:
        >>> swapped_pairs({"a": 0.5, "b": 0.4, "c": 0.3}, {"a": 0.5, "b": 0.55, "c": 0.1})
        ['b above a by 0.0500 (default: 0.1000 below)']
    """
    order = ranked(variant_means)
    swaps = []
    for rank, upper in enumerate(order):
        for lower in order[rank + 1 :]:
            default_gap = default_means[upper] - default_means[lower]
            if default_gap < 0:
                variant_gap = variant_means[upper] - variant_means[lower]
                swaps.append(
                    f"{upper} above {lower} by {variant_gap:.4f} "
                    f"(default: {-default_gap:.4f} below)"
                )
    return swaps


def attention_rows(pairs: Mapping[Group, Pairs]) -> list[list]:
    """One row per method: ``COLUMNS``.

    Example:
        >>> attention_rows({("a", 0.1, 0, "uniform"): {0: (0.2, 0.5), 1: (0.4, 0.5)}})
        [['a', 0.1, 0, 'uniform', 2, 0.3, 0.5, '0.2000 ± 0.1414', '2 of 2', 1, 1]]
    """
    default_order, variant_order = orderings(pairs)
    rows = []
    for group, by_seed in pairs.items():
        differences = [variant - default for default, variant in by_seed.values()]
        mean, spread, higher = difference_summary(differences)
        rows.append(
            [
                *group,
                len(by_seed),
                round(statistics.fmean(default for default, _ in by_seed.values()), 4),
                round(statistics.fmean(variant for _, variant in by_seed.values()), 4),
                f"{mean:.4f} ± {spread:.4f}",
                higher,
                default_order.index(group[0]) + 1,
                variant_order.index(group[0]) + 1,
            ]
        )
    return rows


def ordering_verdict(
    default_order: Sequence[str], variant_order: Sequence[str], pending: Sequence[str] = ()
) -> str:
    """Whether the two orderings differ, in words: no verdict from one method, and a verdict
    that holds only "so far" while ``pending`` methods have no run under both attentions yet.

    Example:
        >>> ordering_verdict(["a", "b"], ["a", "b"], pending=["c"])
        '**unchanged so far** (c: no run under both attentions yet)'
        >>> ordering_verdict(["a", "b"], ["b", "a"])
        '**changed**'
    """
    if len(default_order) < 2:
        return "**not yet known** (one method has runs under both attentions)"
    verdict = "unchanged" if list(default_order) == list(variant_order) else "changed"
    if not pending:
        return f"**{verdict}**"
    return f"**{verdict} so far** ({', '.join(pending)}: no run under both attentions yet)"


def count_range(counts: Iterable[int]) -> str:
    """Seed counts as a range: "3", or "1-3" when the methods differ.

    Example:
        >>> count_range([3, 1, 3]), count_range([2, 2])
        ('1-3', '2')
    """
    distinct = sorted(set(counts))
    if len(distinct) == 1:
        return str(distinct[0])
    return f"{distinct[0]}-{distinct[-1]}"


def attention_sections(
    variant_records: Sequence[Mapping],
    default_records: Sequence[Mapping],
    attention: str,
    planned_methods: Iterable[str] = (),
) -> list[ReportSection]:
    """The section "Does the <attention> attention change the ordering?"; none when no run of
    the variant has a default-attention twin. ``planned_methods``: the methods the variant
    plans runs of; those not yet paired make the verdict hold only so far.

    Example:
        >>> attention_sections([], [], "din")
        []
    """
    pairs = attention_pairs(variant_records, default_records)
    if not pairs:
        return []
    default_order, variant_order = orderings(pairs)
    paired = {group[0] for group in pairs}
    pending = sorted(set(planned_methods) - paired)
    verdict = ordering_verdict(default_order, variant_order, pending)
    default_means = all_seed_means(pairs, default_records)
    all_seed_recall = {method: mean for method, (mean, _) in default_means.items()}
    best_order = ranked(all_seed_recall)
    swaps = swapped_pairs(
        all_seed_recall,
        {method: variant for method, (_, variant) in paired_means(pairs).items()},
    )
    seed_count = count_range(len(by_seed) for by_seed in pairs.values())
    all_seed_count = count_range(count for _, count in default_means.values())
    text = (
        f"Each run with the {attention} pre-ranking attention against the default (bilinear) "
        "attention's run of the same method, temperature, training negatives, embedding start, "
        "length and seed; test-day joint recall, the paired difference subtracts the default's. "
        "The ranks order the methods by mean test joint recall over the paired seeds "
        f"({seed_count} per method). Default attention: {' > '.join(default_order)}; "
        f"{attention}: {' > '.join(variant_order)}. The ordering is {verdict}. "
        f"Over all its seeds ({all_seed_count} per method), the default attention ranks "
        f"{' > '.join(best_order)}; against that, {attention}'s ordering is "
        f"{ordering_verdict(best_order, variant_order, pending)}"
        + (f": {'; '.join(swaps)}." if swaps else ".")
    )
    return [
        ReportSection(
            f"Does the {attention} attention change the ordering?",
            text,
            f"attention_{attention}_ordering",
            COLUMNS,
            attention_rows(pairs),
        )
    ]
