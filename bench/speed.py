"""Benchmark: trainlab's per-epoch wall time against a hand-written loop and the usual Lightning pipeline.

Ways to train the default model (MNIST 5k, hourglass 784-512-256-512-10, relu, Adam lr 1e-3; --optim sgd etc.
for another conf/optim option) on the same tensors, taken from trainlab's own datamodule, starting from the same
weights (torch seed = cfg.seed):

  hand       the loop a user writes: the optimizer as the config names it (torch.optim.Adam(lr=1e-3), torch's
             default implementation), batches sliced from a torch.randperm each
             epoch, then per epoch the evaluation trainlab does too (eval mode, no_grad, loss + accuracy on
             val and on a fixed training sample of the same size), batched like trainlab's validation loaders;
  best_hand  the same loop with trainlab's kernel for that optimizer (trainlab.nn.optim.build_optimizer: fused Adam);
  trainlab   the real entry, `trainlab.run.pipeline.train_and_test(cfg)` with cfg composed from conf/train.yaml as
             tests/conftest.py does (default callbacks, logger=csv into a temp dir), plus one added
             callback, `+callbacks.epoch_timer._target_=bench.speed.EpochTimer`;
  floor      a LightningModule that only computes the loss, on trainlab's batches, with trainlab's optimizer
             kernel, in a Trainer with no logger, callbacks or progress bar: Lightning's own per-step cost;
  bare       trainlab with callbacks=none logger=none and no progress bar: its module and datamodule without
             the callbacks, so the info lines split trainlab's cost over the floor;
  usual      (CPU, batch 128) DataLoader(TensorDataset, shuffle=True), a LightningModule that logs a
             torchmetrics Accuracy with self.log(on_step=True, on_epoch=True) every step, the same two
             validation sets, and a default Trainer(logger=CSVLogger, enable_checkpointing=True);
  wide_*     (--device cuda, batch 512) trainlab on a wide MLP (uniform, 4 x 4096) in 32-true and bf16-mixed.

An epoch is timed from on_train_epoch_start to the end of that epoch's validation (for hand: the same
span; on a GPU after torch.cuda.synchronize()); "full" epochs (start to next start: also checkpoint writing
and epoch-end logging) are shown too, and with --threads 1 on the CPU the process's CPU seconds over the
same span (info lines): they leave out the time the process waited for a core another one held. Runs are
interleaved (hand, best_hand, floor, ...) so machine load hits all alike; every epoch of every repeat is
pooled and the median taken. The `ratio` lines pair the sides within each repeat instead: the geometric mean
of the per-repeat ratios of median epochs, with its 95% t interval over repeats (bench/paired.py), because this
machine's speed drifts between minutes by more than the margins measured; a target is "met" when the whole
interval is at or below it, "missed" when the whole interval is above, and otherwise the run cannot tell.

With --lockstep the sides of a batch size run together, in threads of one process that take turns epoch by
epoch (the others wait), and each epoch of one side is paired with the same epoch of another, timed seconds
apart (from the second epoch on: the first carries one-time set-up): the steadiest figure on this machine.
The objects alive before a group starts are frozen out of the garbage collector's full passes (gc.freeze),
which would otherwise scan them inside some side's epoch and charge that side for it. "Full" epochs are not measured then
(they would span the other side's turns).

Run:   .venv/bin/python bench/speed.py                  (CPU, batches 128 and 32, 5 epochs x 6 repeats)
       .venv/bin/python bench/speed.py --quick          (3 epochs x 4 repeats)
       .venv/bin/python bench/speed.py --threads 1 --lockstep --repeats 3 --epochs 8   (docs/performance.md's figures)
       .venv/bin/python bench/speed.py --device cuda    (batches 128 and 512, and the wide MLP's precisions)
       .venv/bin/python bench/speed.py --optim sgd      (every side with src/trainlab/conf/optim/sgd.yaml's optimizer)
       add --threads 1 on a busy machine: with other jobs on the cores, torch's 2 OpenMP threads wait on
       each other and single epochs take many times longer, on every side, which no median repairs.
Ends with `ratio template_vs_floor_b<B>` (target <= 1.05) and `ratio template_vs_hand_b<B>` (targets <= 1.10
at 128, <= 1.0 at 32) for each batch, and `ratio template_vs_usual_lightning` (CPU) or
`ratio bf16_vs_fp32_wide_b512` (GPU); trainlab over the other, lower is better.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]  # `bench.speed.EpochTimer` for Hydra; trainlab uninstalled
os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", WANDB_MODE="offline")

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from torchmetrics import Accuracy  # noqa: E402

from trainlab import CONF  # noqa: E402
from trainlab.nn.diagnostics import Diagnostic  # noqa: E402
from trainlab.nn.optim import build_optimizer  # noqa: E402
from trainlab.run.build import compose_config, instantiate_node  # noqa: E402

from bench.paired import paired_ratio  # noqa: E402


class EpochTimer(Diagnostic):
    """`epoch_s`: on_train_epoch_start -> on_validation_end; `full_s`: epoch start -> next start (or train end);
    `cpu_s`: the process's CPU seconds over the `epoch_s` span.

    A trainlab Diagnostic: trainlab.run.summary writes its `report` into summary["diagnostics"]["epoch_timer"].
    """

    name = "epoch_timer"

    def __init__(self):
        super().__init__()
        self.report = {"epoch_s": [], "full_s": [], "cpu_s": []}
        self._start: float | None = None
        self._cpu_start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch_start()
        now = time.perf_counter()
        if self._start is not None:
            self.report["full_s"].append(now - self._start)
        self._start, self._cpu_start = now, time.process_time()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and self._start is not None:
            sync()
            self.report["epoch_s"].append(time.perf_counter() - self._start)
            self.report["cpu_s"].append(time.process_time() - self._cpu_start)

    def on_train_end(self, trainer, pl_module) -> None:
        sync()
        self.report["full_s"].append(time.perf_counter() - self._start)


DEVICE = torch.device("cpu")  # --device cuda moves every side's data and net there
OPTIM = "adam"  # --optim: the conf/optim option every side trains with


class Baton:
    """--lockstep: the sides run in threads that take turns, one epoch each (the others wait, using no CPU), so
    epoch k of every side is timed within seconds of the others' and the machine's drift cancels in the pairs.

    A side holds the baton from one epoch start to its next (its checkpoints and logging included), and from
    its thread's start to its first epoch (set-up), so no two sides ever run at once.
    """

    def __init__(self, sides: int):
        self.turn, self.finished, self.changed = 0, [False] * sides, threading.Condition()
        self.epochs_started = [0] * sides  # per side: a side whose epochs never got here never took turns
        self.local = threading.local()

    def wait_turn(self) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.turn == self.local.side)

    def pass_on(self) -> None:
        with self.changed:
            sides, me = len(self.finished), self.local.side
            following = next((i % sides for i in range(me + 1, me + sides) if not self.finished[i % sides]), me)
            self.turn = following
            self.changed.notify_all()

    def next_epoch(self) -> None:
        """At each epoch start: the other sides' turns, then this one's."""
        self.epochs_started[self.local.side] += 1
        self.pass_on()
        self.wait_turn()

    def run(self, side: int, work) -> None:
        self.local.side = side
        self.wait_turn()
        try:
            work()
        finally:
            with self.changed:
                self.finished[side] = True
            self.pass_on()


BATON: Baton | None = None


def epoch_start() -> None:
    if BATON is not None:
        BATON.next_epoch()
    sync()


@contextlib.contextmanager
def quiet():
    """Console output discarded; under --lockstep it already is, for the whole process (threads share sys.stdout)."""
    if BATON is not None:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def say(*args) -> None:
    """The bench's own output, on the process's stdout even while sys.stdout is silenced (--lockstep)."""
    print(*args, file=sys.__stdout__, flush=True)


def sync() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()  # a GPU's kernels run behind the host: time them, not their launches


def make_cfg(out: str, *overrides: str):
    """The composed conf/train.yaml, writing into `out`, as `python train.py <overrides>` would."""
    device = ("trainer=gpu",) if DEVICE.type == "cuda" else ()
    return compose_config(*device, f"optim={OPTIM}", *overrides, output_dir=out)



def parts(cfg):
    """The datamodule (its splits on DEVICE), a freshly seeded net (trainlab's initial weights) and the training sample."""
    from trainlab.run.build import build_datamodule, build_net

    dm = build_datamodule(cfg)
    torch.manual_seed(cfg.seed)  # trainlab seeds before building the datamodule, which draws no torch numbers
    net = build_net(cfg, dm.num_features, dm.num_classes).to(DEVICE)
    dm.splits = {name: (x.to(DEVICE), y.to(DEVICE)) for name, (x, y) in dm.splits.items()}
    n_train, n_val = len(dm.splits["train"][1]), len(dm.splits["val"][1])
    sample = torch.randperm(n_train, generator=torch.Generator().manual_seed(cfg.data.split_seed))[:n_val].sort().values
    return dm, net, sample.to(DEVICE)


def run_hand(batch: int, epochs: int, tmp: str, best: bool = False) -> dict:
    """The loop a user writes (torch's default implementation), or with `best` trainlab's optimizer kernel."""
    cfg = make_cfg(tmp, f"data.batch_size={batch}")
    dm, net, sample = parts(cfg)
    (x, y), val = dm.splits["train"], dm.splits["val"]
    evals = {"val": val, "train": (x[sample], y[sample])}
    factory = instantiate_node(cfg.optim)
    optimizer = build_optimizer(factory, net.parameters()) if best else factory(net.parameters())
    times, cpu, acc = [], [], {}
    for epoch in range(epochs):
        epoch_start()
        start, cpu_start = time.perf_counter(), time.process_time()
        net.train()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed + epoch)).to(DEVICE)
        for i in range(0, len(y), batch):
            index = order[i:i + batch]
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            for name, (xe, ye) in evals.items():
                total_loss = correct = torch.zeros((), device=DEVICE)
                for i in range(0, len(ye), batch):
                    logits = net(xe[i:i + batch])
                    total_loss = total_loss + F.cross_entropy(logits, ye[i:i + batch], reduction="sum")
                    correct = correct + (logits.argmax(1) == ye[i:i + batch]).sum()
                acc[name], acc[name + "_loss"] = correct.item() / len(ye), total_loss.item() / len(ye)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {"epoch_s": times, "full_s": times, "cpu_s": cpu, "val_acc": acc["val"], "epochs": epochs}


def run_best_hand(batch: int, epochs: int, tmp: str) -> dict:
    return run_hand(batch, epochs, tmp, best=True)


def run_trainlab(batch: int, epochs: int, tmp: str, *overrides: str) -> dict:
    from trainlab.run.pipeline import train_and_test

    cfg = make_cfg(tmp, f"data.batch_size={batch}", f"trainer.max_epochs={epochs}",
                   "+callbacks.epoch_timer._target_=bench.speed.EpochTimer", *overrides)
    with quiet():  # the progress bar still runs
        summary = train_and_test(cfg)
    timer = summary["diagnostics"]["epoch_timer"]
    return {**timer, "val_acc": summary["final"]["val/acc"], "epochs": len(timer["epoch_s"])}


class UsualModule(L.LightningModule):
    """The LightningModule most tutorials write: torchmetrics objects logged every step."""

    def __init__(self, net, num_classes: int, optimizer):
        super().__init__()
        self.net, self.optimizer = net, optimizer
        self.train_acc = Accuracy(task="multiclass", num_classes=num_classes)
        self.val_accs = torch.nn.ModuleList([Accuracy(task="multiclass", num_classes=num_classes) for _ in range(2)])

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        logits = self.net(x)
        self.val_accs[dataloader_idx](logits, y)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", self.val_accs[dataloader_idx], prog_bar=True)

    def configure_optimizers(self):
        return self.optimizer(self.parameters())  # torch's default implementation


def timed_fit(module: L.LightningModule, train, vals, epochs: int, tmp: str, **trainer_options) -> tuple[dict, L.Trainer]:
    """`module` fitted by a Trainer with an EpochTimer (console output discarded); the timings and the Trainer."""
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, default_root_dir=tmp, callbacks=[timer],
                        accelerator="gpu" if DEVICE.type == "cuda" else "cpu", devices=1, **trainer_options)
    with quiet():
        trainer.fit(module, train, vals)
    return {**timer.report, "epochs": len(timer.report["epoch_s"])}, trainer


def run_usual(batch: int, epochs: int, tmp: str) -> dict:
    cfg = make_cfg(tmp, f"data.batch_size={batch}")
    dm, net, sample = parts(cfg)
    (x, y), (xv, yv) = dm.splits["train"], dm.splits["val"]
    report, trainer = timed_fit(UsualModule(net, dm.num_classes, instantiate_node(cfg.optim)),
                                DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True),
                                [DataLoader(TensorDataset(xv, yv), batch_size=batch),
                                 DataLoader(TensorDataset(x[sample], y[sample]), batch_size=batch)],
                                epochs, tmp, logger=CSVLogger(tmp), enable_checkpointing=True)
    return {**report, "val_acc": trainer.callback_metrics["val_acc/dataloader_idx_0"].item()}


class FloorModule(L.LightningModule):
    """The least a LightningModule can be: loss only, nothing logged, nothing measured."""

    def __init__(self, net, optimizer):
        super().__init__()
        self.net, self.optimizer = net, optimizer

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        F.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return build_optimizer(self.optimizer, self.parameters())  # trainlab's kernel


def run_floor(batch: int, epochs: int, tmp: str) -> dict:
    """Lightning's own cost: FloorModule on trainlab's batches, a Trainer without logger, callbacks or bar."""
    from trainlab.nn.data import TensorBatches

    cfg = make_cfg(tmp, f"data.batch_size={batch}")
    dm, net, sample = parts(cfg)
    (x, y), (xv, yv) = dm.splits["train"], dm.splits["val"]
    floor = FloorModule(net, instantiate_node(cfg.optim))
    report, _ = timed_fit(floor, TensorBatches(x, y, batch, shuffle=True, seed=cfg.seed),
                          [TensorBatches(xv, yv, batch, shuffle=False, seed=0),
                           TensorBatches(x[sample], y[sample], batch, shuffle=False, seed=0)],
                          epochs, tmp, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, num_sanity_val_steps=0)
    return {**report, "val_acc": float("nan")}


def run_bare(batch: int, epochs: int, tmp: str) -> dict:
    return run_trainlab(batch, epochs, tmp, "callbacks=none", "logger=none", "callbacks.progress_bar.refresh_rate=0")


WIDE = ("model=uniform", "model.width=4096", "model.depth=4")  # a wide MLP, where bf16's tensor cores can matter
RUNNERS = {"hand": run_hand, "best_hand": run_best_hand, "floor": run_floor, "bare": run_bare, "trainlab": run_trainlab,
           "usual": run_usual,
           "wide_fp32": lambda batch, epochs, tmp: run_trainlab(batch, epochs, tmp, *WIDE, "precision=32-true"),
           "wide_bf16": lambda batch, epochs, tmp: run_trainlab(batch, epochs, tmp, *WIDE, "precision=bf16-mixed")}
SIDES = ("hand", "best_hand", "floor", "bare", "trainlab")
PLANS = {"cpu": [(128, (*SIDES, "usual")), (32, SIDES)],
         "cuda": [(128, SIDES), (512, (*SIDES, "wide_fp32", "wide_bf16"))]}


def run_side(method: str, batch: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        return RUNNERS[method](batch, epochs, tmp)


def run_one_by_one(methods: tuple[str, ...], batch: int, epochs: int) -> list[dict]:
    return [run_side(method, batch, epochs) for method in methods]


def run_lockstep(methods: tuple[str, ...], batch: int, epochs: int) -> list[dict]:
    """Every side in its own thread, taking turns epoch by epoch (Baton)."""
    global BATON
    BATON = Baton(len(methods))
    results: dict[str, dict] = {}
    gc.collect()
    gc.freeze()  # the imports' objects: a full collection would scan them all inside some side's epoch

    def side(method: str) -> None:
        results[method] = run_side(method, batch, epochs)

    threads = [threading.Thread(target=BATON.run, args=(i, functools.partial(side, method)))
               for i, method in enumerate(methods)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.unfreeze()
    missing = [method for method in methods if method not in results]
    if missing:
        raise RuntimeError(f"--lockstep: {', '.join(missing)} failed (its traceback is above)")
    untimed = [m for i, m in enumerate(methods) if BATON.epochs_started[i] < results[m]["epochs"]]
    if untimed:  # its epochs ran without passing the baton: not interleaved, and the pairs would say otherwise
        raise RuntimeError(f"--lockstep: {', '.join(untimed)} did not take turns (an EpochTimer of another module?)")
    return [results[method] for method in methods]


def main() -> None:
    global DEVICE, OPTIM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs x 4 repeats instead of 5 x 6")
    parser.add_argument("--epochs", type=int, help="epochs per run (default 5, --quick 3)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 6, --quick 4); the ratios' "
                        "intervals need at least 2")
    parser.add_argument("--threads", type=int, help="torch threads for all sides (default: torch's own); "
                        "1 keeps the numbers sane on a busy machine, where 2 threads on 2 cores stall for seconds")
    parser.add_argument("--device", choices=tuple(PLANS), default="cpu",
                        help="cuda: data and nets on the GPU, batches 128 and 512, and 32-true vs bf16-mixed on a wide MLP")
    parser.add_argument("--lockstep", action="store_true",
                        help="the sides of a batch size run in one process and take turns epoch by epoch; ratios "
                        "pair each epoch with the other side's same epoch (steadier on a machine whose speed drifts)")
    parser.add_argument("--optim", default="adam", choices=sorted(p.stem for p in (CONF / "optim").glob("*.yaml")),
                        help="the conf/optim option every side trains with (default adam)")
    args = parser.parse_args()
    DEVICE, OPTIM = torch.device(args.device), args.optim
    if args.threads:
        torch.set_num_threads(args.threads)  # trainlab's threads=null keeps whatever the process has
    epochs = args.epochs or (3 if args.quick else 5)
    repeats = args.repeats or (4 if args.quick else 6)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "trainlab"):
        logging.getLogger(name).setLevel(logging.WARNING)

    results: dict[tuple[str, int], list[dict]] = {}
    load_before = os.getloadavg()
    card = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    say(f"torch {torch.__version__}, lightning {L.__version__}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} cpus, {card}; {epochs} epochs x {repeats} repeats"
        f"{', sides in lockstep' if args.lockstep else ''}; load average {load_before[0]:.2f}")
    if args.lockstep:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (every side's console output, for the whole run)
    for batch, methods in PLANS[args.device]:
        for repeat in range(repeats):
            runs = (run_lockstep if args.lockstep else run_one_by_one)(methods, batch, epochs)
            for method, result in zip(methods, runs, strict=True):
                results.setdefault((method, batch), []).append(result)
                say(f"  b{batch} repeat {repeat + 1} {method:9s}: median epoch "
                    f"{statistics.median(result['epoch_s']):.4f} s over {result['epochs']} epochs, "
                    f"val acc {result['val_acc']:.4f}")
    load_after = os.getloadavg()

    medians: dict[tuple[str, int], dict[str, float]] = {}
    say("\nmedian per-epoch wall time (train + per-epoch evaluation), all epochs of all repeats pooled:")
    for (method, batch), runs in results.items():
        m = medians[method, batch] = {key: statistics.median(t for r in runs for t in r[key])
                                      for key in ("epoch_s", "full_s", "cpu_s")}
        accs = " ".join(f"{r['val_acc']:.4f}" for r in runs)
        full = "" if args.lockstep else f"full epoch {m['full_s']:.4f} s  "
        say(f"  b{batch:<4d} {method:9s} epoch {m['epoch_s']:.4f} s  {full}"
            f"cpu {m['cpu_s']:.4f} s  "
            f"epochs run {[r['epochs'] for r in runs]}  final val acc {accs}")
    say(f"load average: {load_before[0]:.2f} at start, {load_after[0]:.2f} at end "
        f"(1/5/15 min at end: {', '.join(f'{v:.2f}' for v in load_after)})")

    def ratio(num: str, den: str, batch: int, key: str = "epoch_s") -> float:
        return medians[num, batch][key] / medians[den, batch][key]

    for batch, _ in PLANS[args.device]:
        if not args.lockstep:  # under --lockstep a full epoch spans the other sides' turns
            say(f"info full-epoch template_vs_hand_b{batch}: "
                f"{ratio('trainlab', 'hand', batch, 'full_s'):.3f} (checkpoints, epoch-end logging)")
        if torch.get_num_threads() == 1 and DEVICE.type == "cpu":
            say(f"info cpu-time template_vs_floor_b{batch}: {ratio('trainlab', 'floor', batch, 'cpu_s'):.3f}, "
                f"template_vs_hand_b{batch}: {ratio('trainlab', 'hand', batch, 'cpu_s'):.3f}, bare_vs_floor_b{batch}: "
                f"{ratio('bare', 'floor', batch, 'cpu_s'):.3f} (the process's CPU seconds: time spent waiting for "
                "a core another process holds is left out)")

    def paired(name: str, num: str, den: str, batch: int, target: float | None = None, what: str = "") -> None:
        """`info` with the interval, then a `ratio` line, or for a breakdown (`what` says what it measures) none."""
        if args.lockstep:  # epoch k with epoch k from the second (the first carries one-time set-up: the first
            # self.log of each key, the logger's files); a side that stopped early (early stopping) pairs fewer
            pairs = [pair for a, b in zip(results[num, batch], results[den, batch], strict=True)
                     for pair in zip(a["epoch_s"][1:], b["epoch_s"][1:], strict=False)]
        else:
            pairs = [(statistics.median(a["epoch_s"]), statistics.median(b["epoch_s"]))
                     for a, b in zip(results[num, batch], results[den, batch], strict=True)]
        estimate = paired_ratio(*zip(*pairs, strict=True))
        fastest = min(t for r in results[num, batch] for t in r["epoch_s"]) / min(
            t for r in results[den, batch] for t in r["epoch_s"])
        say(f"info {name}: {estimate.ratio:.3f}, {estimate.text(target)}; pooled medians "
            f"{ratio(num, den, batch):.3f}; fastest epochs {fastest:.3f}{what}")
        if not what:  # the ratios make bench reports
            say(f"ratio {name} {estimate.ratio:.3f}")

    for batch, _ in PLANS[args.device]:
        paired(f"floor_vs_hand_b{batch}", "floor", "hand", batch,
               what=" (Lightning's own cost: a loss-only module in a bare Trainer, trainlab's optimizer kernel)")
        paired(f"bare_vs_floor_b{batch}", "bare", "floor", batch,
               what=" (trainlab's module and datamodule; no callbacks, logger or progress bar)")
        paired(f"template_vs_best_hand_b{batch}", "trainlab", "best_hand", batch,
               what=" (the hand loop with trainlab's optimizer kernel)")
        paired(f"best_hand_vs_hand_b{batch}", "best_hand", "hand", batch,
               what=" (trainlab's optimizer kernel vs torch's default)")
        paired(f"template_vs_floor_b{batch}", "trainlab", "floor", batch, 1.05)
        paired(f"template_vs_hand_b{batch}", "trainlab", "hand", batch, 1.10 if batch >= 128 else 1.0)
    if args.device == "cpu":
        paired("template_vs_usual_lightning", "trainlab", "usual", 128, 0.5)
    else:
        paired("bf16_vs_fp32_wide_b512", "wide_bf16", "wide_fp32", 512)


if __name__ == "__main__":
    sys.modules["bench.speed"] = sys.modules[__name__]  # Hydra's `bench.speed.EpochTimer` is this one (and its BATON)
    main()
