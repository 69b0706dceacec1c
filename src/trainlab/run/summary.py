"""What a run folder records of a run: summary.json (metrics per epoch, best, test, diagnostics, verdict),
predictions.npz (per-sample predictions for paired tests) and labels.json (class names)."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torchmetrics.functional.classification import multiclass_confusion_matrix

from trainlab.errors import first_line
from trainlab.nn.diagnostics import Diagnostic, FitVerdict
from trainlab.nn.folding import unfolded
from trainlab.nn.models import count_parameters
from trainlab.nn.module import Classifier
from trainlab.run.build import Run
from trainlab.run.job import scheduler_job

log = logging.getLogger("trainlab")


def record_labels(out: Path, datamodule) -> None:
    """labels.json: the class name of each output id, when the data has names (string labels, text sets)."""
    if getattr(datamodule, "label_names", None):
        (out / "labels.json").write_text(json.dumps(dict(enumerate(datamodule.label_names)), indent=2))


def run_record(run: Run, overrides: list[str]) -> dict:
    """What summary.json says of the run's make-up, whether it completes or fails."""
    return {"overrides": overrides, "threads": torch.get_num_threads(), "num_parameters": count_parameters(run.module.net),
            "layer_widths": getattr(run.module.net, "widths", None), "precision": str(run.trainer.precision),
            "memory": run.memory}


def _epoch_metrics(history: list[dict], epoch: int | None) -> dict:
    return next((dict(h) for h in history if h["epoch"] == epoch), {})


def build_summary(module: Classifier, trainer: L.Trainer, test_metrics: dict, seconds: float) -> dict:
    history = [h for h in module.history if "val/loss" in h]
    best = min(history, key=lambda h: h["val/loss"]) if history else {}
    return {
        "status": "completed",
        "final": _epoch_metrics(module.history, module.history[-1]["epoch"]) if module.history else {},
        "best": best,
        "best_epoch": best.get("epoch"),
        "test": test_metrics,
        "epochs_run": trainer.current_epoch,
        "num_parameters": count_parameters(module.net),
        "layer_widths": getattr(module.net, "widths", None),
        "precision": str(trainer.precision),
        "wall_time_s": round(seconds, 3),
        "history": module.history,
    }


def save_predictions(trainer: L.Trainer, module: Classifier, datamodule, out: Path) -> dict:
    """Per-sample predictions of the tested weights on val and test, for paired tests between runs.

    Written to predictions.npz; returns what summary.json records of them: the epoch the weights come
    from, the accuracies they give and a fingerprint of the evaluation samples (their labels, in order),
    so the report pairs only runs that were evaluated on the same samples.
    """
    if trainer.world_size > 1 or trainer.fast_dev_run:  # a rank sees its shard only; fast_dev_run one batch
        return {}
    loaders = {"val": datamodule.val_dataloader()[0], "test": datamodule.test_dataloader()}
    batches = trainer.predict(module, dataloaders=list(loaders.values()))
    arrays, record = {}, {}
    for split, outputs in zip(loaders, batches, strict=True):
        predicted, label, _ = (torch.cat(parts).cpu().numpy() for parts in zip(*outputs, strict=True))
        arrays |= {f"{split}_predicted": predicted.astype(np.int32), f"{split}_label": label.astype(np.int32)}
        record[f"{split}/acc"] = float((predicted == label).mean())
        record[f"{split}_samples"] = len(label)
    # Rows: true class, columns: predicted class (the report's per-class precision and recall come from it).
    record["test_confusion"] = multiclass_confusion_matrix(
        torch.from_numpy(arrays["test_predicted"]).long(), torch.from_numpy(arrays["test_label"]).long(),
        num_classes=module.num_classes).tolist()
    np.savez_compressed(out / "predictions.npz", **arrays)
    labels = arrays["val_label"].tobytes() + arrays["test_label"].tobytes()
    last = module.history[-1]["epoch"] if module.history else None
    epoch = module.loaded_epoch if module.loaded_epoch is not None else last
    return {"epoch": epoch, **record, "fingerprint": hashlib.sha1(labels).hexdigest()[:16]}


def diagnostics(trainer: L.Trainer) -> tuple[dict | None, dict]:
    """The fit verdict, and the other diagnostics' reports by name (those that found something)."""
    found = [c for c in unfolded(trainer.callbacks) if isinstance(c, Diagnostic) and c.report]
    verdict = next((c.report for c in found if isinstance(c, FitVerdict)), None)
    return verdict, {c.name: c.report for c in found if not isinstance(c, FitVerdict)}


def write(out: Path, summary: dict, trainer: L.Trainer) -> None:
    if trainer.is_global_zero:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))


def completed(run: Run, out: Path, tested: list[dict], best_checkpoint: str, record: dict, started: float) -> dict:
    """The summary of a finished run, with its predictions saved; written to summary.json."""
    trainer, module = run.trainer, run.module
    summary = {**build_summary(module, trainer, dict(tested[0]) if tested else {}, time.perf_counter() - started),
               **record, "best_checkpoint": best_checkpoint or None,
               "evaluated": save_predictions(trainer, module, run.datamodule, out)}
    if torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
        summary["memory"]["measured_peak_mb"] = round(torch.cuda.max_memory_allocated() / 1024**2, 3)
    verdict, found = diagnostics(trainer)
    if found:
        summary["diagnostics"] = found
    summary["verdict"] = verdict
    write(out, summary, trainer)
    if trainer.is_global_zero:
        log.info("best epoch %s: %s | test: %s%s", summary["best_epoch"], _fmt(summary["best"]), _fmt(summary["test"]),
                 record_notes(record))
        log.info("run folder: %s", out)
    return summary


@contextmanager
def failure_recorded(run: Run, out: Path, record: dict, started: float):
    """A failure during fit or test still leaves a summary.json (status failed, the error's first line)."""
    try:
        yield
    except BaseException as error:
        # submitit stops a job it requeues (time limit, preemption) with sys.exit: -1 on SLURM, 144 locally
        stopped = isinstance(error, SystemExit) and error.code in (-1, 144) and scheduler_job() is not None
        summary = {**build_summary(run.module, run.trainer, {}, time.perf_counter() - started), **record,
                   "status": "requeued" if stopped else "failed",
                   "error": "stopped by the scheduler (time limit or preemption); its next attempt continues from "
                            "checkpoints/last.ckpt" if stopped else first_line(error)}
        write(out, summary, run.trainer)
        raise


def record_failure(cfg: DictConfig, error: BaseException, overrides: list[str]) -> None:
    """A failed sweep job's summary.json (kept if training already wrote one)."""
    path = Path(cfg.paths.output_dir) / "summary.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"status": "failed", "error": first_line(error), "overrides": overrides}))


def record_notes(record: dict) -> str:
    """What the last log line adds: a requeued job's attempts, a pruned trial's last epoch."""
    times, pruned = record.get("requeued"), record.get("pruned_at_epoch")
    return (f" | requeued {times} time{'s' * (times > 1)}" if times else "") + (
        f" | pruned after epoch {pruned}" if pruned is not None else "")


def optimized_value(cfg: DictConfig, summary: dict) -> float | None:
    """The metric sweepers optimise, taken at the best epoch (or from the test run)."""
    name = cfg.get("optimized_metric")
    for section in ("best", "test"):
        if name in summary.get(section, {}):  # an lr_find run has neither
            return summary[section][name]
    return None


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "epoch")
