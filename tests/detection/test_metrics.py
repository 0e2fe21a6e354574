import numpy as np
import pytest

from detection.core.metrics import (
    Stratum,
    confusion_counts,
    detector_summary,
    false_flag_at_recall,
    false_flag_rate,
    false_flags_allowed,
    live_rates,
    peer_comparison,
    precision_recall_f1,
    recall_at_false_flag,
    roc_auc,
    roc_curve,
    thresholds_calibrate,
    wilson_interval,
)


def test_confusion_counts_match_a_hand_count():
    counts = confusion_counts(labels=[1, 1, 1, 0, 0, 0, 0], flagged=[True, True, False, True, False, False, False])
    assert counts == {"tp": 2, "fp": 1, "tn": 3, "fn": 1}


def test_precision_recall_f1_match_hand_computed_values():
    scores = precision_recall_f1({"tp": 2, "fp": 1, "tn": 3, "fn": 1})
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert false_flag_rate({"tp": 2, "fp": 1, "tn": 3, "fn": 1}) == pytest.approx(1 / 4)


def test_undefined_metrics_are_none_not_zero():
    scores = precision_recall_f1({"tp": 0, "fp": 0, "tn": 5, "fn": 0})
    assert scores == {"precision": None, "recall": None, "f1": None}
    assert false_flag_rate({"tp": 3, "fp": 0, "tn": 0, "fn": 0}) is None


def test_roc_auc_matches_a_hand_computed_case_with_a_tie():
    # Positives 0.8, 0.4; negatives 0.4, 0.1: pairs won 1+1+0.5+1 of 4.
    assert roc_auc(labels=[1, 1, 0, 0], scores=[0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert roc_auc(labels=[1, 0], scores=[0.9, 0.1]) == 1.0
    assert roc_auc(labels=[1, 0], scores=[0.1, 0.9]) == 0.0
    assert roc_auc(labels=[1, 1], scores=[0.1, 0.9]) is None


def test_roc_curve_runs_from_origin_to_one_one():
    fpr, tpr = roc_curve(labels=[1, 0, 1, 0], scores=[0.9, 0.8, 0.7, 0.1])
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert fpr == sorted(fpr) and tpr == sorted(tpr)


def test_calibrated_high_threshold_flags_at_most_the_target_share_of_reals():
    reals = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    thresholds = thresholds_calibrate(reals, false_flag=0.02, confidence=0.0, uncertain_false_flag=0.10)
    flagged = sum(r >= thresholds["high"] for r in reals)
    uncertain_or_worse = sum(r >= thresholds["low"] for r in reals)
    assert flagged == 2 and uncertain_or_worse == 10
    assert thresholds["low"] < thresholds["high"]


def test_calibration_keeps_low_below_high_when_reals_all_score_the_same():
    thresholds = thresholds_calibrate([0.0] * 50)
    assert thresholds["low"] < thresholds["high"]
    assert not any(r >= thresholds["high"] for r in [0.0] * 50)


def test_confidence_bound_matches_the_binomial_tail_worked_by_hand():
    # 150 reals at 2 %: flagging none happens with p = 0.98**150 = 0.048 <= 0.05 if the true rate were 2 %,
    # flagging one or fewer with p = 0.048 + 150 * 0.02 * 0.98**149 = 0.196 > 0.05, so none may be flagged.
    assert 0.98**150 <= 0.05 < 0.98**150 + 150 * 0.02 * 0.98**149
    assert false_flags_allowed(150, rate=0.02, confidence=0.95) == 0
    # 148 reals cannot back the bound at all, and confidence 0 is the plain point estimate.
    assert false_flags_allowed(148, rate=0.02, confidence=0.95) == -1
    assert false_flags_allowed(1000, rate=0.02, confidence=0.0) == 20


def test_confidence_bounded_threshold_keeps_the_true_false_flag_rate_under_target_in_most_draws():
    # Real scores uniform on [0, 1]: a threshold t has a true false-flag rate of exactly 1 - t.
    rng = np.random.default_rng(0)
    draws = 400
    over_bounded = over_point = 0
    for _ in range(draws):
        reals = rng.random(778)
        over_bounded += 1 - thresholds_calibrate(reals, false_flag=0.02, confidence=0.95)["high"] > 0.02
        over_point += 1 - thresholds_calibrate(reals, false_flag=0.02, confidence=0.0)["high"] > 0.02
    assert over_bounded / draws <= 0.08  # 5 % by construction, with room for sampling noise
    assert over_point / draws >= 0.3  # the point estimate overshoots about half the time


def test_calibration_says_when_validation_is_too_small_for_the_bound():
    thresholds = thresholds_calibrate([i / 50 for i in range(50)], false_flag=0.02, confidence=0.95)
    assert thresholds["false_flag_bound_met"] is False
    assert thresholds["high"] > 0.98  # flags none of them


def test_a_collection_flagged_more_than_the_rest_sets_the_threshold_on_its_own():
    rng = np.random.default_rng(1)
    calm, harsh, tiny = rng.uniform(0, 0.5, 1000), rng.uniform(0, 1, 300), rng.uniform(0, 1, 40)
    scores = np.concatenate([calm, harsh, tiny])
    sources = ["calm"] * 1000 + ["harsh"] * 300 + ["tiny"] * 40
    pooled = thresholds_calibrate(scores, false_flag=0.02)
    per_source = thresholds_calibrate(scores, real_sources=sources, false_flag=0.02)
    assert per_source["false_flag_populations"] == ["all", "calm", "harsh"]  # 40 reals cannot back the bound
    assert per_source["high"] > pooled["high"]
    allowed = false_flags_allowed(300, rate=0.02, confidence=0.95)
    assert np.sum(harsh >= per_source["high"]) <= allowed < np.sum(harsh >= pooled["high"])
    # A minimum size leaves collections below it to the pooled bound alone.
    large_only = thresholds_calibrate(scores, real_sources=sources, false_flag=0.02, collection_minimum=500)
    assert large_only["false_flag_populations"] == ["all", "calm"]
    assert large_only["high"] == pooled["high"]


def test_false_flag_rate_at_equal_recall_matches_a_hand_count():
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.6, 0.3, 0.7, 0.5, 0.4, 0.2, 0.1]
    # Catching 3 of 4 AI images needs threshold 0.6, which flags the real 0.7: 1 of 5.
    assert false_flag_at_recall(labels=labels, scores=scores, recall=0.75) == 0.2
    # All four need 0.3, which also flags 0.7, 0.5 and 0.4.
    assert false_flag_at_recall(labels=labels, scores=scores, recall=1.0) == 0.6
    assert false_flag_at_recall(labels=[1, 1], scores=[0.5, 0.6], recall=0.5) is None


def test_wilson_interval_matches_its_closed_form_and_stays_inside_zero_and_one():
    z = 1.959963984540054
    for successes, n in [(0, 10), (5, 10), (10, 10), (3, 250)]:
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = wilson_interval(successes=successes, n=n)
        assert low == pytest.approx(max(0.0, centre - half)) and high == pytest.approx(min(1.0, centre + half))
        assert 0.0 <= low <= p <= high <= 1.0
    assert wilson_interval(successes=0, n=0) is None


def test_wilson_interval_narrows_with_more_trials_at_the_same_rate():
    few = wilson_interval(successes=1, n=20)
    many = wilson_interval(successes=50, n=1000)
    assert few[1] - few[0] > many[1] - many[0]


def test_live_rates_weigh_spot_checks_by_the_share_of_cleared_uploads_they_stand_for():
    flagged = Stratum(population=100, real_flagged=4, ai_flagged=6)  # 10 of 100 flagged uploads decided so far
    cleared = Stratum(population=900, real_cleared=8, ai_cleared=1)  # a spot check of 9 of 900 cleared
    rates = live_rates([flagged, cleared])
    real_flagged = flagged.population * 4 / flagged.decided
    real_cleared = cleared.population * 8 / cleared.decided
    ai_flagged = flagged.population * 6 / flagged.decided
    ai_cleared = cleared.population * 1 / cleared.decided
    assert rates["false_flag"]["rate"] == pytest.approx(real_flagged / (real_flagged + real_cleared))
    assert rates["recall"]["rate"] == pytest.approx(ai_flagged / (ai_flagged + ai_cleared))
    assert rates["false_flag"]["low"] < rates["false_flag"]["rate"] < rates["false_flag"]["high"]
    assert (rates["decided"], rates["real_decided"], rates["ai_decided"]) == (19, 12, 7)
    # Reviewed flagged uploads alone would say every genuine photo was flagged: the bias spot checks remove.
    assert live_rates([flagged])["false_flag"]["rate"] == 1.0


def test_live_rates_are_undefined_while_cleared_uploads_have_no_spot_check():
    rates = live_rates([Stratum(population=50, real_flagged=3, ai_flagged=5), Stratum(population=400)])
    assert rates["false_flag"]["rate"] is None and rates["recall"]["rate"] is None
    assert rates["unsampled"] == 400


def test_a_handful_of_decisions_gives_a_wide_interval_and_many_a_narrow_one():
    few = live_rates([Stratum(population=5, real_flagged=1, ai_flagged=4), Stratum(population=95, real_cleared=3)])
    many = live_rates(
        [Stratum(population=500, real_flagged=100, ai_flagged=400), Stratum(population=9500, real_cleared=300)]
    )
    assert few["false_flag"]["rate"] == pytest.approx(many["false_flag"]["rate"])
    assert few["false_flag"]["low"] < many["false_flag"]["low"]
    assert few["false_flag"]["high"] > many["false_flag"]["high"]


def test_recall_at_a_false_flag_rate_counts_the_ai_images_above_the_reals_left_unflagged():
    reals = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    ai = [0.95, 0.85, 0.8, 0.5]  # 0.8 ties a real: flagging it would flag that real too
    labels, scores = [0] * len(reals) + [1] * len(ai), reals + ai
    # 10 % of ten reals: the one at 0.9 may be flagged, the one at 0.8 may not.
    assert recall_at_false_flag(labels=labels, scores=scores, rate=0.1) == pytest.approx(2 / 4)
    assert recall_at_false_flag(labels=labels, scores=scores, rate=0.0) == pytest.approx(1 / 4)
    assert recall_at_false_flag(labels=labels, scores=scores, rate=0.3) == pytest.approx(3 / 4)
    assert recall_at_false_flag(labels=[1, 1], scores=[0.2, 0.3], rate=0.1) is None


def test_detector_summary_of_a_tiny_made_up_set_matches_a_hand_count():
    rows = [  # (label, source, score, flagged at the detector's own threshold)
        (0, "camera", 0.1, False),
        (0, "camera", 0.7, True),
        (0, "camera", 0.2, False),
        (0, "camera", 0.3, False),
        (0, "stock", 0.9, True),
        (0, "stock", 0.4, False),
        (1, "gen-a", 0.95, True),
        (1, "gen-a", 0.6, False),
        (1, "gen-b", 0.85, True),
        (1, "gen-b", 0.05, False),
    ]
    labels, sources, scores, flagged = (list(column) for column in zip(*rows, strict=True))
    summary = detector_summary(labels=labels, scores=scores, flagged=flagged, sources=sources, rates=(0.0, 0.2))
    assert (summary["images"], summary["real"], summary["ai"]) == (10, 6, 4)
    assert summary["false_flag_rate"] == pytest.approx(2 / 6) and summary["recall"] == pytest.approx(2 / 4)
    assert summary["false_flags_by_source"] == {
        "camera": {"flagged": 1, "images": 4, "rate": 0.25},
        "stock": {"flagged": 1, "images": 2, "rate": 0.5},
    }
    assert summary["worst_false_flag_rate"] == 0.5
    assert summary["recall_by_source"]["gen-b"] == {"flagged": 1, "images": 2, "rate": 0.5}
    # Pairs won: 0.95 beats 6, 0.85 beats 5, 0.6 beats 4, 0.05 beats 0, of 24.
    assert summary["roc_auc"] == pytest.approx(15 / 24)
    # No real flagged: above 0.9, only 0.95 is caught; one of six may be: above 0.7, 0.95 and 0.85.
    assert summary["recall_at_false_flag"] == {0.0: pytest.approx(1 / 4), 0.2: pytest.approx(2 / 4)}


def _summary(genuine: list[tuple[str, float, bool]], ai: list[tuple[float, bool]]) -> dict:
    """A detector's summary from (collection, score, flagged) of genuine photos and (score, flagged) of AI ones."""
    rows = [(0, *photo) for photo in genuine] + [(1, "gen", *image) for image in ai]
    labels, sources, scores, flagged = (list(column) for column in zip(*rows, strict=True))
    return detector_summary(labels=labels, scores=scores, flagged=flagged, sources=sources, rates=(0.25,))


def test_peer_comparison_names_the_best_peer_the_recall_ratio_and_each_collection_ours_does_not_flag_less():
    # One genuine photo in four may be flagged in each: a caught AI image scores above the second highest.
    ours = _summary(
        [("camera", 0.1, False), ("camera", 0.2, False), ("stock", 0.3, False), ("stock", 0.4, True)],
        [(0.9, True), (0.8, True), (0.25, False)],
    )  # above 0.3: 2 of 3
    strong = _summary(
        [("camera", 0.1, False), ("camera", 0.6, True), ("stock", 0.2, False), ("stock", 0.4, True)],
        [(0.9, True), (0.3, False), (0.2, False)],
    )  # above 0.4: 1 of 3
    weak = _summary(
        [("camera", 0.5, False), ("camera", 0.6, False), ("stock", 0.7, False), ("stock", 0.8, False)],
        [(0.1, False), (0.2, False), (0.3, False)],
    )  # above 0.7: none
    check = peer_comparison(ours=ours, peers={"strong": strong, "weak": weak}, rate=0.25, ratio=1.5)
    assert check["best_peer"] == "strong"
    assert (check["ours_recall"], check["best_peer_recall"]) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert check["ratio"] == pytest.approx(2.0) and check["ratio_met"]
    # stock: ours flags 1 of 2 as the strong peer does (not fewer); camera: 0 against 1 (fewer); against the
    # weak peer ours flags more in stock, and neither flags camera, which is not held against ours.
    assert check["collections_not_fewer"] == [("stock", "strong"), ("stock", "weak")]
    assert not check["fewer_everywhere"]
    assert not peer_comparison(ours=ours, peers={"strong": strong}, rate=0.25, ratio=2.5)["ratio_met"]
