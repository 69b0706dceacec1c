"""`trainlab-report` on real (short) sweeps: the table matches summary.json, the plots are real PNGs."""
from __future__ import annotations

import html
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainlab.run.pipeline import train_and_test
from trainlab.stats import wilson
from trainlab.study.compare import group_settings, rank
from trainlab.study.plots import DPI, FIGSIZE, shorten
from trainlab.study.report import (
    SETTING_COLUMNS,
    add_combinations,
    claim_rows,
    fmt,
    history_from_csv,
    html_table,
    load_runs,
    main,
    markdown_table,
    per_class_tables,
    run_config,
    run_overrides,
    setting_rows,
    settings_note,
    short_reason,
    sweep_claims,
    table_order,
    table_rows,
)

from conftest import fake_run, make_cfg, run_cli

PIXELS = (FIGSIZE[0] * DPI, FIGSIZE[1] * DPI)
NAN_ERROR = "loss became NaN at epoch 2"


def sweep(folder: Path, *overrides: str) -> Path:
    result = run_cli("-m", *overrides, f"hydra.sweep.dir={folder}")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.fixture(scope="session")
def activation_sweep(tmp_path_factory) -> Path:
    return sweep(tmp_path_factory.mktemp("report") / "activations", "activation=sigmoid,relu", "data=digits",
                 "trainer.max_epochs=3", "logger=csv")


@pytest.fixture(scope="session")
def capacity_sweep(tmp_path_factory) -> Path:
    return sweep(tmp_path_factory.mktemp("report") / "capacity", "model=uniform", "model.width=4,16,64", "data=digits",
                 "trainer.max_epochs=2", "logger=none")


def copy_sweep(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.ckpt", "report.*", "*.png", "train_vs_val"))
    return target


def table(folder: Path, heading: str = "Runs") -> list[list[str]]:
    """The rows of the table under `## <heading>` in report.md, header and separator left out."""
    section = (folder / "report.md").read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = {"Settings": "| rank | setting | n |", "Runs": "| combination | train acc | val acc |"}.get(heading, "|")
    assert lines[0].startswith(header)
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def summaries(folder: Path) -> dict[str, dict]:
    """summary.json of each run, keyed by the run's activation override."""
    runs = {}
    for path in folder.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        key = next(o for o in run_overrides(path.parent, summary) if o.startswith("activation="))
        runs[key] = summary
    return runs


@pytest.mark.full
def test_sweep_report_table_plots_and_page(activation_sweep, capsys):
    assert main([str(activation_sweep)]) == 0
    rows = table(activation_sweep)
    assert sorted(r[0] for r in rows) == ["activation=relu", "activation=sigmoid"], "common overrides are dropped"
    expected = summaries(activation_sweep)
    for combination, train_acc, val_acc, train_loss, val_loss, test_acc, params, seconds, verdict in rows:
        s = expected[combination]
        assert [train_acc, val_acc, train_loss, val_loss] == [
            f"{s['final'][k]:.4f}" for k in ("train/acc", "val/acc", "train/loss", "val/loss")]
        assert test_acc == f"{s['test']['test/acc']:.4f}" and params == f"{s['num_parameters']:,}"
        epoch_time = s["diagnostics"]["epoch_time"]
        assert len(epoch_time["seconds"]) == s["epochs_run"] and seconds == f"{epoch_time['median_s']:.3g}"
        assert verdict.startswith(s["verdict"]["fit"]) if s.get("verdict") else verdict == "-"
    assert float(rows[0][2]) >= float(rows[1][2]), "sorted by val acc, best first"

    settings = table(activation_sweep, "Settings")
    assert [r[:3] for r in settings] == [["1", "activation=relu", "1"], ["2", "activation=sigmoid", "1"]]
    for row in settings:
        s = expected[row[1]]
        n = s["evaluated"]["val_samples"]
        assert row[3] == wilson(round(s["evaluated"]["val/acc"] * n), n).text(), "one run: Wilson interval"
    assert settings[1][SETTING_COLUMNS.index("vs best")].startswith("worse (McNemar, p=")

    pngs = sorted(activation_sweep.rglob("*.png"))
    assert {p.relative_to(activation_sweep).parts[0] for p in pngs} == {"curves.png", "train_vs_val", "confusion"}
    assert len(list((activation_sweep / "train_vs_val").glob("*.png"))) == 2
    assert len(list((activation_sweep / "confusion").glob("*.png"))) == 2, "one test confusion matrix per setting"
    assert not (activation_sweep / "bias_variance.png").exists(), "one parameter count: no capacity plot"
    assert all(png_size(p) == PIXELS for p in pngs)

    page = (activation_sweep / "report.html").read_text()
    assert "<table>" in page and all(f"<td>{html.escape(cell)}</td>" in page for row in rows + settings for cell in row)
    assert all(f'src="{p.relative_to(activation_sweep).as_posix()}"' in page for p in pngs)
    out = capsys.readouterr().out
    assert str(activation_sweep / "report.md") in out and str(activation_sweep / "report.html") in out


@pytest.mark.full
def test_capacity_sweep_plots_error_against_parameters(capacity_sweep, tmp_path):
    assert main([str(capacity_sweep)]) == 0
    rows = table(capacity_sweep)
    assert sorted(r[0] for r in rows) == ["model.width=16", "model.width=4", "model.width=64"]
    assert [float(r[2]) for r in rows] == sorted((float(r[2]) for r in rows), reverse=True)
    assert png_size(capacity_sweep / "bias_variance.png") == PIXELS
    assert 'src="bias_variance.png"' in (capacity_sweep / "report.html").read_text()

    single = next(capacity_sweep.glob("0_*"))
    shutil.copytree(single, tmp_path / "one" / single.name, ignore=shutil.ignore_patterns("*.ckpt"))
    assert main([str(tmp_path / "one")]) == 0
    assert not (tmp_path / "one" / "bias_variance.png").exists()
    all_overrides = "seed=42, model=uniform, model.width=4, data=digits, trainer.max_epochs=2"
    assert table(tmp_path / "one")[0][0] == all_overrides, "a single run shows all its overrides but tooling ones"


@pytest.mark.full
def test_failed_run_is_listed_last_with_its_reason(activation_sweep, tmp_path, capsys):
    folder = copy_sweep(activation_sweep, tmp_path / "with_failure")
    relu = next(folder.glob("1_*"))
    failed = folder / relu.name.replace("1_activation=relu", "2_activation=tanh")
    shutil.copytree(relu, failed)
    (failed / "summary.json").write_text(json.dumps({
        "status": "failed", "error": NAN_ERROR,
        "overrides": ["activation=tanh", "data=digits", "trainer.max_epochs=3", "logger=csv"]}))

    assert main([str(folder)]) == 1
    rows = table(folder)
    assert len(rows) == 3 and rows[-1][0] == "activation=tanh"
    assert rows[-1][-1] == f"failed: {NAN_ERROR}" and rows[-1][1] == "-"
    assert len(list((folder / "train_vs_val").glob("*.png"))) == 3, "the failed run's csv still gives its curves"
    failed_setting = table(folder, "Settings")[-1]
    assert failed_setting[:3] == ["-", "activation=tanh", "0"] and failed_setting[-1] == f"failed: {NAN_ERROR}"
    assert f"failed: {NAN_ERROR}" in (folder / "report.html").read_text()
    assert "1 of 3 runs failed" in capsys.readouterr().err


@pytest.mark.full
def test_runs_logged_to_wandb_get_the_report_offline(activation_sweep, tmp_path):
    run = next(activation_sweep.glob("0_*"))
    folder = tmp_path / run.name
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns("*.ckpt"))
    (folder / "wandb" / "offline-run-20250101_000000-abc").mkdir(parents=True)  # as logger=wandb leaves it
    assert main([str(folder)]) == 0
    report_runs = [d for d in (folder / "wandb").glob("offline-run-*") if d.name != "offline-run-20250101_000000-abc"]
    assert len(report_runs) == 1
    media = report_runs[0] / "files" / "media"
    assert list(media.glob("table/settings_*.table.json")) and list(media.glob("table/runs_*.table.json"))
    assert list(media.glob("images/curves_*.png"))


@pytest.mark.full
def test_history_falls_back_to_metrics_csv(activation_sweep):
    run = next(activation_sweep.glob("0_*"))
    history = json.loads((run / "summary.json").read_text())["history"]
    from_csv = history_from_csv(run / "csv" / "metrics.csv")
    assert [h["epoch"] for h in from_csv] == [h["epoch"] for h in history]
    pairs = zip(from_csv, history, strict=True)
    assert all(c[k] == pytest.approx(h[k]) for c, h in pairs for k in ("train/loss", "val/acc"))


def test_overrides_from_the_folder_name(tmp_path):
    assert run_overrides(tmp_path / "3_model.hidden=[8,4],optim=sgd", {}) == ["model.hidden=[8,4]", "optim=sgd"]
    assert run_overrides(tmp_path / "2026-01-01_10-00-00_000", {}) == []


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_no_runs_is_exit_code_2_with_one_line(tmp_path, capsys, make):
    assert main([str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_command_line_entry(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainlab.study.report", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr == f"error: {tmp_path / 'missing'}: no such folder\n"


@pytest.fixture(scope="session")
def replicated_sweep(tmp_path_factory) -> Path:
    """2 settings x 2 seeds x 2 splits: 4 replicates each, paired by (seed, split)."""
    return sweep(tmp_path_factory.mktemp("report") / "replicated", "activation=relu,tanh", "seed=1,2",
                 "data.split_seed=0,1", "data=digits", "model=uniform", "model.width=32", "model.depth=1",
                 "trainer.max_epochs=3", "logger=none")


@pytest.mark.full
def test_replicates_are_one_row_with_t_intervals_and_a_paired_test(replicated_sweep):
    rows = table(replicated_sweep, "Settings")
    assert sorted(r[1] for r in rows) == ["activation=relu", "activation=tanh"] and [r[2] for r in rows] == ["4", "4"]
    assert [r[0] for r in rows][0] == "1" and rows[1][0] in ("=1", "2")
    runs = [json.loads(p.read_text()) for p in replicated_sweep.glob("*/summary.json")]
    best = [r for r in runs if "activation=" + rows[0][1].split("=")[1] in r["overrides"]]
    values = [r["evaluated"]["val/acc"] for r in best]
    mean = sum(values) / 4
    assert rows[0][3].startswith(f"{mean:.3f} [") and "]" in rows[0][3]
    versus = rows[1][SETTING_COLUMNS.index("vs best")]
    assert versus.startswith(("tied (paired t, p=", "worse (paired t, p="))
    assert len(list((replicated_sweep / "train_vs_val").glob("*.png"))) == 2, "one plot per setting"


@pytest.mark.full
def test_saved_predictions_give_the_reported_accuracies(replicated_sweep):
    import numpy as np

    for path in replicated_sweep.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        evaluated = summary["evaluated"]
        with np.load(path.parent / "predictions.npz") as saved:
            val = float((saved["val_predicted"] == saved["val_label"]).mean())
            test = float((saved["test_predicted"] == saved["test_label"]).mean())
            assert len(saved["val_label"]) == evaluated["val_samples"]
        epoch = next(h for h in summary["history"] if h["epoch"] == evaluated["epoch"])
        assert evaluated["epoch"] == summary["best_epoch"]  # the tested weights are the best checkpoint's
        assert val == pytest.approx(epoch["val/acc"], abs=1e-6)
        assert test == pytest.approx(summary["test"]["test/acc"], abs=1e-6)


@pytest.mark.full
def test_splits_are_replicates_too_but_each_split_has_its_own_samples(replicated_sweep):
    fingerprints = {}
    for path in replicated_sweep.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        split = next(o for o in summary["overrides"] if o.startswith("data.split_seed="))
        fingerprints.setdefault(split, set()).add(summary["evaluated"]["fingerprint"])
    assert all(len(f) == 1 for f in fingerprints.values()) and len(set.union(*fingerprints.values())) == 2


@pytest.mark.full
def test_settings_on_different_evaluation_sets_are_refused_and_nothing_is_written(tmp_path, capsys):
    folder = tmp_path / "fractions"
    result = run_cli("-m", "data.val_fraction=0.1,0.2", "data=digits", "model=uniform", "model.width=8",
                     "model.depth=1", "trainer.max_epochs=1", "logger=none", f"hydra.sweep.dir={folder}")
    assert result.returncode == 2 and "error: data.val_fraction: " in result.stderr
    assert "evaluated on different samples" in result.stderr and not (folder / "report.md").exists()
    (folder / "report.md").write_text("an earlier report")
    assert main([str(folder)]) == 2 and (folder / "report.md").read_text() == "an earlier report"
    assert main([str(folder), "--only", "data.val_fraction=0.2"]) == 0
    assert table(folder, "Settings")[0][2] == "1"


@pytest.mark.parametrize("replicates", ["0", "-1", "two"])
def test_impossible_replicates_are_refused_before_any_job(tmp_path, replicates):
    result = run_cli("-m", f"replicates={replicates}", "data=digits", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 2 and "error: replicates: must be an integer >= 1" in result.stderr
    assert not list(tmp_path.glob("sweep/*/summary.json"))


@pytest.mark.full
def test_replicates_without_a_sweep_says_to_add_m(tmp_path):
    result = run_cli("replicates=3", "data=digits", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "add -m" in result.stderr and not (tmp_path / "summary.json").exists()


@pytest.mark.full
def test_replicates_are_seed_and_split_pairs_shared_by_the_settings(tmp_path):
    result = run_cli("-m", "replicates=3", "activation=relu,tanh", "data=digits", "model=uniform", "model.width=8",
                     "model.depth=1", "trainer.max_epochs=1", "logger=none", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    pairs: dict[str, list] = {}
    for path in tmp_path.glob("*/config.yaml"):
        config = yaml.safe_load(path.read_text())
        pairs.setdefault(config["activation"]["_target_"], []).append((config["seed"], config["data"]["split_seed"]))
    assert [sorted(p) for p in pairs.values()] == [[(42, 42), (43, 43), (44, 44)]] * 2  # distinct splits, paired
    assert [row[2] for row in table(tmp_path, "Settings")] == ["3", "3"]
    assert "Each replicate has its own seed and data split" in (tmp_path / "report.md").read_text()


def test_a_fixed_split_is_refused_where_the_experiment_requires_varied_splits(tmp_path):
    result = run_cli("experiment=scaling", "data.split_seed=0", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2 and "error: data.split_seed: data.split_seed=0 gives all 5 replicates one split" \
        in result.stderr
    assert not tmp_path.exists() or not list(tmp_path.glob("*/summary.json"))


def test_a_single_seed_with_replicates_is_refused(tmp_path):
    result = run_cli("-m", "replicates=3", "seed=7", "data=digits", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2 and "write seed=range(7,10)" in result.stderr
    assert not list(tmp_path.glob("*/summary.json"))


def test_debug_runs_are_listed_but_not_compared_and_speed_is_per_epoch(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for name, overrides in (("0_relu", ["activation=relu"]), ("1_tanh", ["activation=tanh"]),
                            ("2_debug", ["activation=tanh", "debug=limit_batches"])):
        extra = ["trainer.limit_train_batches=2"] if "debug" in name else []
        train_and_test(make_cfg(sweep / name, "data=digits", "model=uniform", "model.width=8", "trainer.max_epochs=2",
                                "logger=none", "callbacks.progress_bar.refresh_rate=0", *extra))
        path = sweep / name / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "overrides": overrides}))
    assert main([str(sweep), "--no-wandb"]) == 0
    assert "1 run(s) made with a debug= preset are listed but not compared" in capsys.readouterr().err
    assert sorted(r[1] for r in table(sweep, "Settings")) == ["activation=relu", "activation=tanh"]
    assert [r[2] for r in table(sweep, "Settings")] == ["1", "1"]
    runs = table(sweep)
    assert len(runs) == 3
    relu = json.loads((sweep / "0_relu" / "summary.json").read_text())["diagnostics"]["epoch_time"]
    assert len(relu["seconds"]) == 2  # one per epoch: the speed column is their median, not wall time with start-up
    assert next(r for r in runs if r[0].startswith("activation=relu"))[7] == f"{relu['median_s']:.3g}"
    assert main([str(sweep), "--no-wandb", "--include-debug"]) == 0
    assert len(table(sweep, "Settings")) == 3


def test_per_class_view_from_the_test_confusion_matrix(tmp_path, reviews_csv):
    run = tmp_path / "run"
    summary = train_and_test(make_cfg(run, "data=text_files", f"data.path={reviews_csv}", "data.text_column=review",
                                      "data.label_column=stars", "model=text_bow", "trainer.max_epochs=5",
                                      "logger=none", "callbacks.progress_bar.refresh_rate=0"))
    matrix = summary["evaluated"]["test_confusion"]
    assert sum(map(sum, matrix)) == summary["evaluated"]["test_samples"]  # every test sample counted once
    assert (matrix[0][0] + matrix[1][1]) / sum(map(sum, matrix)) == pytest.approx(summary["test"]["test/acc"])
    assert main([str(run), "--no-wandb"]) == 0
    recall = table(run, "Per-class recall (test)")[0]
    true = [sum(row) for row in matrix]
    assert recall[1:] == [f"{matrix[c][c] / true[c]:.3f}" for c in range(2)]
    report = (run / "report.md").read_text()
    assert "| setting | bad | good |" in report  # the class names of labels.json
    png = run / "confusion" / "default.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "confusion/default.png" in (run / "report.html").read_text()


@pytest.mark.parametrize("epochs", [1, 3])
def test_epoch_axes_show_whole_epochs_only(monkeypatch, tmp_path, epochs):
    import trainlab.study.plots as plots

    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig))
    history = [{"epoch": e, "train/loss": 1 / (e + 1), "val/loss": 1.2 / (e + 1), "train/acc": 0.9, "val/acc": 0.8}
               for e in range(epochs)]
    plots.plot_train_vs_val("one run", [{"summary": {"best_epoch": epochs - 1}, "history": history}], tmp_path / "a.png")
    for ax in figures[0].axes:
        low, high = ax.get_xlim()
        assert low <= 0 and high >= epochs - 1 and high - low >= 1  # one epoch: a point, not +-0.05 around it
        shown = [t for t in ax.get_xticks() if low <= t <= high]
        assert shown and all(float(t).is_integer() for t in shown)


def test_history_from_metrics_csv_merges_each_epochs_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss_step,train/loss,val/loss,val/acc\n"
                    ",5,0.9,,,\n"               # a step row without an epoch: skipped
                    "0,9,,0.8,,\n"              # epoch 0's train row ...
                    "0,9,,,0.7,0.6\n"           # ... and its val row, merged
                    "1.0,19,0.5,,,\n"           # only a column that is no epoch metric: epoch 1 dropped
                    "2,29,,0.4,0.5,0.75\n"
                    "3,39,,,,0.8\n")            # one metric is enough
    assert history_from_csv(path) == [{"epoch": 0, "train/loss": 0.8, "val/loss": 0.7, "val/acc": 0.6},
                                      {"epoch": 2, "train/loss": 0.4, "val/loss": 0.5, "val/acc": 0.75},
                                      {"epoch": 3, "val/acc": 0.8}]
    assert history_from_csv(tmp_path / "missing.csv") == []
    path.write_text("epoch,val/acc\nnot a number,0.5\n")
    assert history_from_csv(path) == []


def test_claim_rows_show_text_source_outcome_and_evidence():
    records = [{"text": "relu beats sigmoid", "source": "000", "outcome": "reproduced", "evidence": "p=0.01"},
               {"text": "no source", "outcome": "not run", "evidence": "0 settings"}]
    assert claim_rows(records) == [["relu beats sigmoid", "000", "**reproduced**", "p=0.01"],
                                   ["no source", "-", "**not run**", "0 settings"]]


def table_run(combination: str, failed: bool = False, **summary) -> dict:
    return {"combination": combination, "failed": failed, "summary": summary}


def test_runs_table_rows_from_the_last_epoch_with_verdict_and_speed():
    final = {"train/acc": 0.99, "val/acc": 0.951, "train/loss": 0.02, "val/loss": 0.2}
    verdict = {"fit": "overfitting", "stop_epoch": 3,
               "reason": "train acc 0.990 vs val acc 0.951 (gap 0.039): val loss is 20% above its minimum"}
    runs = [table_run("optim=adam", final=final, test={"test/acc": 0.94}, verdict=verdict, num_parameters=669706,
                      diagnostics={"epoch_time": {"median_s": 0.1234}}),
            table_run("optim=sgd", final={"val/acc": 0.5}, verdict={"fit": "good fit", "stop_epoch": None}),
            table_run("optim=rmsprop", failed=True, error="loss became nan at epoch 2, step 30" + " x" * 80),
            table_run("optim=adamw", failed=True)]
    rows = table_rows(runs)
    assert rows[0] == ["optim=adam", "0.9900", "0.9510", "0.0200", "0.2000", "0.9400", "669,706", "0.123",
                       "overfitting (stop at epoch 3): train acc 0.990 vs val acc 0.951 (gap 0.039)"]
    assert rows[1] == ["optim=sgd", "-", "0.5000", "-", "-", "-", "-", "-", "good fit"]
    assert rows[2][-1].startswith("failed: loss became nan at epoch 2, step 30 x") and len(rows[2][-1]) == 8 + 120
    assert rows[3][-1] == "failed: no reason recorded" and rows[3][1:8] == ["-"] * 7


@pytest.mark.parametrize(("value", "shown"), [
    (None, "-"), (True, "-"), (False, "-"), (1234567, "1,234,567"), (0.5, "0.5000"), (float("nan"), "nan"), ("x", "x"),
])
def test_table_cells(value, shown):
    assert fmt(value) == shown
    assert fmt(0.123456, digits=2) == "0.12"


@pytest.mark.parametrize(("reason", "short"), [
    ("train acc 0.990 vs val acc 0.951 (gap 0.039): val loss is 20% above", "train acc 0.990 vs val acc 0.951 (gap 0.039)"),
    ("train acc 0.5 and val acc 0.4 are low; more epochs", "train acc 0.5 and val acc 0.4 are low"),
    ("twenty characters!!: then more", "twenty characters!!: then more"),  # a first clause under 20 chars says too little
    ("twenty characters!!!: then more", "twenty characters!!!"),
    ("a first clause long enough — and a second: with a colon", "a first clause long enough"),
    ("x" * 100, "x" * 79 + "…"),
])
def test_verdict_reasons_are_cut_to_their_first_clause(reason, short):
    assert short_reason(reason) == short


def test_runs_are_ordered_by_val_acc_then_without_one_then_failed():
    runs = [table_run("failed", failed=True, final={"val/acc": 0.99}), table_run("none"),
            table_run("nan", final={"val/acc": float("nan")}), table_run("low", final={"val/acc": 0.5}),
            table_run("high", final={"val/acc": 0.9})]
    assert [r["combination"] for r in sorted(runs, key=table_order)] == ["high", "low", "none", "nan", "failed"]


def test_run_config_reads_config_yaml_or_gives_an_empty_dict(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 3\ndata: {split_seed: 1}\n")
    assert run_config(tmp_path) == {"seed": 3, "data": {"split_seed": 1}}
    (tmp_path / "config.yaml").write_text("- a list\n")
    assert run_config(tmp_path) == {}
    (tmp_path / "config.yaml").write_text("seed: [unclosed\n")
    assert run_config(tmp_path) == {} and run_config(tmp_path / "missing") == {}


def test_load_runs_reads_each_run_folder(tmp_path):
    good = tmp_path / "0_optim=adam"
    good.mkdir()
    (good / "summary.json").write_text(json.dumps({"status": "completed", "overrides": ["optim=adam"],
                                                    "history": [{"epoch": 0, "val/acc": 0.9}],
                                                    "final": {"val/acc": 0.9}, "test": {"test/acc": 0.88}}))
    (good / "config.yaml").write_text("seed: 7\ndata: {split_seed: 2}\n")
    broken = tmp_path / "1_optim=sgd" / "nested"
    broken.mkdir(parents=True)
    (broken / "summary.json").write_text("{not json")
    (broken / "csv").mkdir()
    (broken / "csv" / "metrics.csv").write_text("epoch,val/acc\n0,0.5\n")
    first, second = load_runs(tmp_path)
    assert (first["name"], first["dir"], first["overrides"]) == ("0_optim=adam", good, ["optim=adam"])
    assert first["failed"] is False
    assert first["config"] == {"seed": 7, "data": {"split_seed": 2}} and first["replicate"] == (7, 2)
    assert first["history"] == [{"epoch": 0, "val/acc": 0.9}] and first["metrics"]["test/acc"] == 0.88
    assert second["name"] == "1_optim=sgd__nested" and second["failed"] and second["config"] == {}
    assert second["summary"]["error"].startswith("unreadable summary.json: ")
    assert second["history"] == [{"epoch": 0, "val/acc": 0.5}]  # from metrics.csv when summary.json has none
    (first, ) = load_runs(good)  # a run folder itself
    assert first["name"] == "0_optim=adam" and not first["failed"]


def test_setting_rows_show_intervals_failures_parameters_and_ties(tmp_path):
    runs = [fake_run(tmp_path, ["optim=adam"], s, 0.95 + 0.002 * s) for s in (1, 2, 3)]
    runs += [fake_run(tmp_path, ["optim=sgd"], s, 0.90 + 0.003 * s) for s in (1, 2, 3)]
    runs[-1]["summary"]["num_parameters"] = 999  # parameters that differ within a setting are not shown
    failed = fake_run(tmp_path, ["optim=sgd"], 4, 0.1)
    failed["failed"] = True
    add_combinations([*runs, failed])
    ranked = rank(group_settings([*runs, failed]))
    adam, sgd = setting_rows(ranked)
    assert adam[:3] == ["1", "optim=adam", "3"] and sgd[:3] == ["2", "optim=sgd", "3 (+1 failed)"]
    assert adam[3] == ranked[0].estimates["val/acc"].text() and adam[8] == "100" and sgd[8] == "-"
    assert adam[4] == ranked[0].estimates["test/acc"].text() and adam[6] == ranked[0].estimates["val/loss"].text()
    assert sgd[9] == f"worse (paired t, p={ranked[1].p_holm:.3g})" and adam[9] == "best"
    assert "(Student t; one run: Wilson interval). val chose each run's checkpoint, so settings are ranked on " \
        "test/acc" in settings_note(ranked)
    single = rank(group_settings([fake_run(tmp_path, ["optim=adam"], 1, 0.9)]))
    assert "(one run each: Wilson interval of each accuracy). val chose" in settings_note(single)


def test_markdown_and_html_tables_escape_their_cells():
    rows = [["a|b", "**reproduced**", "<x> & y"]]
    assert markdown_table(rows, ["c1", "c2", "c3"]) == ("| c1 | c2 | c3 |\n|---|---|---|\n"
                                                        "| a\\|b | **reproduced** | <x> & y |\n")
    assert html_table(rows, ["c<1>", "c2", "c3"]) == ("<table>\n<tr><th>c&lt;1&gt;</th><th>c2</th><th>c3</th></tr>\n"
                                                      "<tr><td>a|b</td><td>reproduced</td><td>&lt;x&gt; &amp; y</td></tr>\n"
                                                      "</table>")


def test_sweep_claims_come_from_the_first_run_that_states_any():
    runs = [{"config": {}}, {"config": {"claims": []}}, {"config": {"claims": [{"text": "a"}]}},
            {"config": {"claims": [{"text": "b"}]}}]
    assert sweep_claims(runs) == [{"text": "a"}] and sweep_claims(runs[:2]) == []


def test_load_runs_status_overrides_from_hydras_record_and_unreadable_summaries(tmp_path):
    old = tmp_path / "0_x"  # a summary.json without a status (older runs): completed
    (old / ".hydra").mkdir(parents=True)
    (old / "summary.json").write_text(json.dumps({"final": {"val/acc": 0.5}}))
    (old / ".hydra" / "overrides.yaml").write_text("- optim=sgd\n- seed=3\n")
    broken = tmp_path / "1_y"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    first, second = load_runs(tmp_path)
    assert first["failed"] is False and first["overrides"] == ["optim=sgd", "seed=3"]
    assert second["failed"] is True and second["summary"]["status"] == "failed"


def test_table_rows_note_without_a_verdict_and_a_long_error_cut_to_120():
    rows = table_rows([table_run("a", final={"val/acc": 0.5}), table_run("b", failed=True, error="x" * 200)])
    assert rows[0][-1] == "-"
    assert rows[1][-1] == "failed: " + "x" * 119 + "…"


def test_per_class_tables_name_classes_by_id_without_labels_and_dash_an_absent_class(tmp_path):
    run = fake_run(tmp_path, ["optim=adam"], 1, 0.9)
    run["summary"]["evaluated"]["test_confusion"] = [[3, 1], [0, 0]]
    tables = per_class_tables(group_settings([run]), None)
    assert tables["per-class recall (test)"] == (["setting", "0", "1"], [["optim=adam", "0.750", "-"]])
    assert tables["per-class precision (test)"] == (["setting", "0", "1"], [["optim=adam", "1.000", "0.000"]])


def test_setting_rows_of_three_settings_and_of_one_without_train_metrics(tmp_path):
    runs = [fake_run(tmp_path, [f"optim={name}"], s, acc + 0.002 * s)
            for name, acc in (("adam", 0.95), ("sgd", 0.90), ("rmsprop", 0.80)) for s in (1, 2)]
    for run in runs[-2:]:
        for key in ("train/acc", "train/loss"):
            run["metrics"].pop(key)
        run["summary"]["verdict"] = {"fit": "underfitting", "reason": "r" * 200}
    ranked = rank(group_settings(runs))
    rows = setting_rows(ranked)
    assert [row[9] for row in rows] == ["best", f"worse (paired t, p={ranked[1].p_holm:.3g}, Holm over 2)",
                                        f"worse (paired t, p={ranked[2].p_holm:.3g}, Holm over 2)"]
    assert rows[0][5] == ranked[0].estimates["train/acc"].text() and rows[0][7] == ranked[0].estimates[
        "train/loss"].text()
    assert rows[2][5] == rows[2][7] == "-"
    assert rows[2][10] == shorten("underfitting (2 of 2 replicates)", 120) and rows[0][10] == "-"
    unranked = group_settings([fake_run(tmp_path, ["optim=adam"], 1, 0.9)])[0]
    assert setting_rows([unranked])[0][0] == "-"


def setting_of(n: int, splits: int):
    """A setting of n replicates spread over `splits` data splits (seed i, split i % splits)."""
    return type("S", (), {"n": n, "runs": [{"replicate": (i, i % splits)} for i in range(n)]})


def test_settings_note_in_full():
    def note(*replicates):
        return settings_note([setting_of(n, n) for n in replicates])
    tail = ("val chose each run's checkpoint, so settings are ranked on test/acc and claims judged on test (or on a "
            "run's last epoch); each setting is tested against the first (paired t over shared seeds and splits, "
            "else McNemar on the same samples), Holm-corrected; tied = not distinguishable from the first at the "
            "5% level.")
    assert note(2, 1) == ("Mean and 95% interval of the tested model (the best checkpoint) over replicates "
                          "(Student t; one run: Wilson interval). " + tail + " Each replicate has its own seed and "
                          "data split, so an interval includes the sampling noise of the evaluation split.")
    assert note(1, 1) == ("Mean and 95% interval of the tested model (the best checkpoint) over replicates "
                          "(one run each: Wilson interval of each accuracy). " + tail)


@pytest.mark.parametrize(("splits", "says"), [
    ((3, 2), "Each replicate has its own seed and data split"),
    ((1, 1), "All replicates share one data split: an interval covers seed-to-seed variation only"),
    ((3, 1), "Some replicates share a data split"),
])
def test_the_note_says_which_noise_the_intervals_cover(splits, says):
    assert says in settings_note([setting_of(n, k) for n, k in zip((3, 2), splits, strict=True)])


def test_html_table_rows_and_stars_stripped_only():
    assert html_table([["**Xy**", "a"], ["b*", "c"]], ["h1", "h2"]) == (
        "<table>\n<tr><th>h1</th><th>h2</th></tr>\n<tr><td>Xy</td><td>a</td></tr>\n<tr><td>b</td><td>c</td></tr>\n"
        "</table>")


def test_combinations_leave_tooling_out_and_keep_seeds():
    runs = [{"name": "r0", "overrides": ["optim=adam", "logger=none", "seed=1"]},
            {"name": "r1", "overrides": ["optim=sgd", "logger=csv", "seed=1"]}]
    add_combinations(runs)
    assert [r["combination"] for r in runs] == ["optim=adam", "optim=sgd"]


def test_combinations_of_one_run_and_of_runs_that_do_not_differ():
    alone = [{"name": "r0", "overrides": ["optim=adam", "seed=1"]}]
    add_combinations(alone)
    assert alone[0]["combination"] == "optim=adam, seed=1"
    same = [{"name": "r0", "overrides": ["optim=adam"]}, {"name": "r1", "overrides": ["optim=adam"]}]
    add_combinations(same)
    assert [r["combination"] for r in same] == ["r0", "r1"]
    bare = [{"name": "r0", "overrides": ["logger=none"]}]
    add_combinations(bare)
    assert bare[0]["combination"] == "default"


def test_setting_rows_cut_a_failed_settings_reason_to_120(tmp_path):
    failed = fake_run(tmp_path, ["optim=sgd"], 1, 0.1)
    failed["failed"], failed["summary"]["error"] = True, "x" * 200
    (row,) = setting_rows(group_settings([failed]))
    assert row[10] == "failed: " + "x" * 111 + "…"
