"""Clustering quality scores, checked against cases worked out by hand."""

from __future__ import annotations

import pytest

from bench.metrics import ami, bcubed, noise_as_singletons, pairwise_f1


def test_bcubed_of_a_perfect_clustering_is_one() -> None:
    assert bcubed(["a", "a", "b"], [7, 7, 3]) == pytest.approx((1.0, 1.0, 1.0))


def test_bcubed_matches_the_hand_computed_example() -> None:
    # pred {0,1} {2,3,4} vs gold {0,1,2} {3,4}:
    # precision per item 1, 1, 1/3, 2/3, 2/3 -> 11/15; recall 2/3, 2/3, 1/3, 1, 1 -> 11/15.
    p, r, f = bcubed([0, 0, 0, 1, 1], [0, 0, 1, 1, 1])
    assert p == pytest.approx(11 / 15)
    assert r == pytest.approx(11 / 15)
    assert f == pytest.approx(11 / 15)


def test_bcubed_counts_each_noise_point_as_its_own_cluster() -> None:
    # Nothing is joined, so precision is perfect; recall 1/2, 1/2, 1 -> 2/3.
    p, r, f = bcubed([0, 0, 1], [-1, -1, -1])
    assert (p, r) == pytest.approx((1.0, 2 / 3))
    assert f == pytest.approx(0.8)


def test_noise_scores_exactly_like_explicit_singletons() -> None:
    gold = ["x", "x", "y", "y", "z"]
    assert bcubed(gold, [-1, -1, 4, 4, -1]) == pytest.approx(bcubed(gold, [0, 1, 4, 4, 2]))
    assert pairwise_f1(gold, [-1, -1, 4, 4, -1]) == pytest.approx(pairwise_f1(gold, [0, 1, 4, 4, 2]))
    assert ami(gold, [-1, -1, 4, 4, -1]) == pytest.approx(ami(gold, [0, 1, 4, 4, 2]))


def test_lumping_everything_together_costs_precision_not_recall() -> None:
    # One predicted cluster of 4: precision 2/4 for every item, recall 1.
    p, r, _ = bcubed([0, 0, 1, 1], [5, 5, 5, 5])
    assert (p, r) == pytest.approx((0.5, 1.0))


def test_pairwise_matches_the_hand_computed_example() -> None:
    # Predicted pairs (0,1) (2,3) (2,4) (3,4); gold pairs (0,1) (0,2) (1,2) (3,4); 2 shared.
    assert pairwise_f1([0, 0, 0, 1, 1], [0, 0, 1, 1, 1]) == pytest.approx((0.5, 0.5, 0.5))


def test_pairwise_with_no_predicted_pairs_has_full_precision_and_no_recall() -> None:
    assert pairwise_f1([0, 0, 1], [-1, -1, -1]) == pytest.approx((1.0, 0.0, 0.0))


def test_pairwise_with_only_singletons_everywhere_is_perfect() -> None:
    assert pairwise_f1([0, 1, 2], [-1, -1, -1]) == pytest.approx((1.0, 1.0, 1.0))


def test_ami_is_one_for_the_same_partition_under_other_names() -> None:
    assert ami(["a", "a", "b", "b", "c"], [3, 3, 1, 1, 0]) == pytest.approx(1.0)


def test_ami_of_all_noise_carries_no_information() -> None:
    assert ami([0, 0, 1, 1], [-1, -1, -1, -1]) == pytest.approx(0.0, abs=1e-9)


def test_scores_refuse_label_lists_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="labels"):
        bcubed([0, 1], [0])


def test_noise_relabelling_gives_fresh_labels_that_clash_with_nothing() -> None:
    out = noise_as_singletons([-1, 2, -1, 2])
    assert out[1] == out[3] == 2
    assert len({int(out[0]), int(out[2]), 2}) == 3
