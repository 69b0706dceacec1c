"""trainlab.study.compare on constructed runs: which test it picks and what it pairs, and the texts and values it reports."""
from __future__ import annotations

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.overrides import is_setting_override, override_key
from trainlab.stats import Comparison, mcnemar, paired_t, welch, wilson
from trainlab.study.compare import (
    Setting,
    compare,
    fit_summary,
    group_settings,
    per_class,
    rank,
    run_metrics,
    versus_best_text,
)

from conftest import fake_run

LABELS = np.arange(500) % 10


def setting(tmp_path, name: str, accuracies: dict[int, float], split_seed: int = 0, wrong: int | None = None,
            fingerprint: str = "same-samples"):
    """One setting's runs, one per seed: {seed: val/acc}; `wrong` saves predictions with that many errors."""
    runs = []
    for seed, acc in accuracies.items():
        run = fake_run(tmp_path, [f"optim={name}"], seed, acc, fingerprint=fingerprint)
        run["replicate"] = (seed, split_seed)
        if wrong is not None:
            predicted = LABELS.copy()
            predicted[:wrong] = (predicted[:wrong] + 1) % 10
            np.savez(run["dir"] / "predictions.npz", val_predicted=predicted, val_label=LABELS,
                     test_predicted=predicted, test_label=LABELS)
        runs.append(run)
    (grouped,) = group_settings(runs)
    return grouped


def test_two_shared_replicates_are_paired_by_seed_whatever_the_run_order(tmp_path):
    a = setting(tmp_path, "adam", {2: 0.93, 1: 0.95})  # runs listed in another order than b's
    b = setting(tmp_path, "sgd", {1: 0.90, 2: 0.91})
    assert compare(a, b, "val/acc") == paired_t([0.95, 0.93], [0.90, 0.91])


def test_replicates_shared_in_part_are_paired_on_the_shared_ones_only(tmp_path):
    a = setting(tmp_path, "adam", {1: 0.95, 2: 0.93, 3: 0.94})
    b = setting(tmp_path, "sgd", {1: 0.90, 2: 0.91, 4: 0.5})
    assert compare(a, b, "val/acc") == paired_t([0.95, 0.93], [0.90, 0.91])


def test_one_shared_run_with_predictions_is_mcnemar_on_accuracies_of_val_and_test_only(tmp_path):
    a = setting(tmp_path / "a", "adam", {1: 0.95}, wrong=25)
    b = setting(tmp_path / "b", "sgd", {1: 0.90}, wrong=50)
    reference = mcnemar(np.arange(500) >= 25, np.arange(500) >= 50)
    assert compare(a, b, "val/acc") == reference and compare(a, b, "test/acc") == reference
    assert compare(a, b, "val/loss") is None and compare(a, b, "train/acc") is None


def test_mcnemar_needs_both_runs_predictions(tmp_path):
    a = setting(tmp_path / "a", "adam", {1: 0.95}, wrong=25)
    b = setting(tmp_path / "b", "sgd", {1: 0.90})
    assert compare(a, b, "val/acc") is None


@pytest.mark.parametrize(("a_runs", "b_runs", "expected"), [
    ({1: 0.95, 2: 0.93}, {3: 0.90, 4: 0.91}, "welch"),
    ({1: 0.95, 2: 0.93, 5: 0.94}, {3: 0.90, 4: 0.91}, "welch"),
    ({1: 0.95, 2: 0.93}, {3: 0.90}, None),
    ({1: 0.95}, {3: 0.90, 4: 0.91}, None),
])
def test_unpaired_replicates_need_two_on_each_side_for_welch(tmp_path, a_runs, b_runs, expected):
    a, b = setting(tmp_path / "a", "adam", a_runs), setting(tmp_path / "b", "sgd", b_runs)
    result = compare(a, b, "val/acc")
    assert result == (welch(list(a_runs.values()), list(b_runs.values())) if expected else None)


def test_paired_replicates_on_different_samples_are_refused_naming_the_data_keys(tmp_path):
    a = setting(tmp_path / "a", "adam", {1: 0.95, 2: 0.93}, fingerprint="x")
    b = setting(tmp_path / "b", "sgd", {1: 0.90, 2: 0.91}, fingerprint="y")
    a.overrides, b.overrides = {"optim": "adam", "data.val_fraction": "0.1"}, {"optim": "sgd", "data": "digits"}
    with pytest.raises(ConfigError, match=r"^data, data.val_fraction: 'optim=adam' and 'optim=sgd' are evaluated on "
                                          r"different samples \(seed, split \(1, 0\)\), so they cannot be compared as "
                                          r"paired; report them separately: trainlab-report <folder> "
                                          r"--only KEY=VALUE$"):
        compare(a, b, "val/acc")
    b.overrides = {"optim": "sgd"}
    with pytest.raises(ConfigError, match=r"^data.val_fraction: "):
        compare(a, b, "val/acc")
    a.overrides = {"optim": "adam", "model.width": "64"}
    with pytest.raises(ConfigError, match=r"^model.width, optim: "):  # no data key differs: every key that does
        compare(a, b, "val/acc")
    a.overrides = b.overrides
    with pytest.raises(ConfigError, match=r"^data: "):
        compare(a, b, "val/acc")


@pytest.mark.parametrize(("override", "key", "setting_key"), [
    ("optim=adam", "optim", True), ("+optim.foo=1", "optim.foo", True), ("~callbacks.x", "callbacks.x", True),
    ("++trainer.max_epochs=3", "trainer.max_epochs", True), ("model.hidden=[8,4]", "model.hidden", True),
    ("data.name=a=b", "data.name", True), ("+~x=1", "x", True), ("+Xy=1", "Xy", True),
    ("seed=3", "seed", False), ("data.split_seed=1", "data.split_seed", False), ("logger=csv", "logger", False),
    ("logger.wandb.project=x", "logger.wandb.project", False), ("logger=[csv,wandb]", "logger", False),
    ("hydra/launcher=joblib", "hydra/launcher", False),
    ("callbacks.progress_bar.refresh_rate=0", "callbacks.progress_bar.refresh_rate", False),
    ("loggers=x", "loggers", True), ("hydra_x=1", "hydra_x", True), ("paths.output_dir=/x", "paths.output_dir", False),
])
def test_override_keys_and_which_overrides_make_a_setting(override, key, setting_key):
    assert override_key(override) == key
    assert is_setting_override(override) is setting_key


def test_replicates_without_a_recorded_seed_still_pair(tmp_path):
    # A run folder without config.yaml has replicate (None, None); sorting it beside (1, 0) must not fail.
    a = setting(tmp_path / "a", "adam", {1: 0.95, 2: 0.93})
    b = setting(tmp_path / "b", "sgd", {1: 0.90, 2: 0.91})
    for s in (a, b):
        s.runs[0]["replicate"] = (None, None)
        s.__dict__.pop("by_replicate", None)  # a cached mapping would hide the change
    assert compare(a, b, "val/acc").test == "paired t"


def test_run_metrics_are_the_tested_epochs_values_and_the_test_values():
    history = [{"epoch": 0, "val/acc": 0.5, "train/acc": 0.6, "val/loss": 1.0, "gap/acc": 0.1, "train/loss": None},
               {"epoch": 1, "val/acc": 0.7, "train/acc": 0.8, "val/loss": 0.6, "train/loss": 0.4}]
    summary = {"history": history, "evaluated": {"epoch": 0}, "best_epoch": 1,
               "test": {"test/acc": 0.65, "test/loss": 0.9, "test/other": 1.0}, "best": {"val/acc": 0.1}}
    tested = {"test/acc": 0.65, "test/loss": 0.9}
    assert run_metrics(summary) == {"val/acc": 0.5, "train/acc": 0.6, "val/loss": 1.0, **tested}
    del summary["evaluated"]  # an older summary: its best epoch
    assert run_metrics(summary) == {"val/acc": 0.7, "train/acc": 0.8, "val/loss": 0.6, "train/loss": 0.4, **tested}
    summary["history"] = []  # no history: the best epoch's record, else the final one
    assert run_metrics(summary) == {"val/acc": 0.1, **tested}
    del summary["best"], summary["test"]
    assert run_metrics({**summary, "final": {"val/acc": 0.2, "val/loss": "n/a"}}) == {"val/acc": 0.2}
    assert run_metrics({}) == {}


def with_runs(verdicts: list[dict | None], failed_errors: list[str | None] = ()) -> Setting:
    return Setting("s", {}, runs=[{"summary": {"verdict": v}} for v in verdicts],
                   failed=[{"summary": {"error": e}} for e in failed_errors])


@pytest.mark.parametrize(("verdicts", "failed", "text"), [
    ([], ["loss became\n  nan at  step 3"], "failed: loss became nan at step 3"),
    ([], [None], "failed: no reason recorded"),
    ([], ["x" * 200], "failed: " + "x" * 120),
    ([{"fit": "overfitting", "reason": "gap 0.1; val loss turned"}], [], "overfitting: gap 0.1"),
    ([{"fit": "good fit"}], [], "good fit"),
    ([None, {"reason": "no fit"}], [], "-"),
    ([{"fit": "good fit"}, {"fit": "overfitting"}, {"fit": "overfitting"}], [],
     "overfitting (2 of 3 replicates); good fit 1"),
    ([{"fit": "good fit"}, {"fit": "overfitting"}], ["boom"], "good fit (1 of 2 replicates); overfitting 1, 1 failed"),
    ([{"fit": "good fit"}, {"fit": "good fit"}], [], "good fit (2 of 2 replicates)"),
])
def test_fit_summary_of_a_setting(verdicts, failed, text):
    assert fit_summary(with_runs(verdicts, failed)) == text


def test_versus_best_text_names_the_test_and_holms_correction():
    setting = with_runs([None])
    setting.rank = "1"
    assert versus_best_text(setting, 3) == "best"
    setting.rank = "2"
    assert versus_best_text(setting, 3) == "not tested (no shared evaluation or replicates)"
    assert versus_best_text(with_runs([], ["boom"]), 3) == "-"
    setting.versus_best, setting.p_holm = Comparison(0.01, -0.01, 0.03, 0.02, "paired t", 5), 0.2
    assert versus_best_text(setting, 3) == "tied (paired t, p=0.2, Holm over 3)"
    setting.p_holm = 0.012345
    assert versus_best_text(setting, 1) == "worse (paired t, p=0.0123)"


def test_per_class_precision_by_predicted_column_and_recall_by_true_row():
    # rows: true class, columns: predicted; class 2 never occurs nor is predicted
    assert per_class([[3, 1, 0], [2, 4, 0], [0, 0, 0]]) == {
        "precision": [3 / 5, 4 / 5, None], "recall": [3 / 4, 4 / 6, None], "support": [4, 6, 0]}


def test_settings_are_named_by_what_differs_and_keep_values_with_an_equals_sign(tmp_path):
    runs = [fake_run(tmp_path, ["data.path=a=b.csv", "optim=adam", "activation=relu"], 1, 0.9),
            fake_run(tmp_path, ["data.path=a=b.csv", "optim=sgd", "activation=tanh"], 1, 0.8)]
    adam, sgd = group_settings(runs)
    assert (adam.name, sgd.name) == ("optim=adam, activation=relu", "optim=sgd, activation=tanh")
    assert adam.overrides == {"data.path": "a=b.csv", "optim": "adam", "activation": "relu"}
    (alone,) = group_settings(runs[:1])
    assert alone.name == "data.path=a=b.csv, optim=adam, activation=relu"


def test_single_runs_get_wilson_intervals_on_their_own_evaluation_sets(tmp_path):
    run = fake_run(tmp_path, ["optim=adam"], 1, 0.9)
    run["summary"]["evaluated"]["test_samples"] = 200
    (s,) = group_settings([run])
    for metric, total in (("val/acc", 500), ("train/acc", 500), ("test/acc", 200)):
        value = run["metrics"][metric]
        assert (s.estimates[metric].method, s.estimates[metric].lo) == ("wilson", wilson(round(value * total), total).lo)
    assert s.estimates["val/loss"].method == ""  # a loss has no sample count to make an interval from
    del run["summary"]["evaluated"]
    (s,) = group_settings([run])
    assert s.estimates["val/acc"].method == ""


def test_replicate_intervals_stay_inside_what_a_metric_can_be(tmp_path):
    runs = [fake_run(tmp_path, ["optim=adam"], seed, acc, val_loss=loss)
            for seed, acc, loss in ((1, 0.999, 0.01), (2, 0.96, 1.50), (3, 0.998, 0.02))]
    (s,) = group_settings(runs)
    assert s.estimates["val/acc"].hi == 1.0 and s.estimates["val/acc"].lo < 0.96
    assert s.estimates["val/loss"].lo == 0.0 and s.estimates["val/loss"].hi > 1.5  # a loss has no upper bound


def test_a_lower_is_better_metric_ranks_the_lowest_first(tmp_path):
    runs = [fake_run(tmp_path, [f"optim={name}"], 1, 0.9, val_loss=loss) for name, loss in (("adam", 0.5), ("sgd", 0.2))]
    assert [s.name for s in rank(group_settings(runs), "val/loss")] == ["optim=sgd", "optim=adam"]


def test_fit_summary_lists_every_other_verdict():
    fits = ["good fit", "good fit", "overfitting", "underfitting"]
    assert fit_summary(with_runs([{"fit": f} for f in fits])) == (
        "good fit (2 of 4 replicates); overfitting 1, underfitting 1")
