"""`sgdplus`: train, resume, list, show, compare, export, stop and delete runs; run sweeps
(grids of runs, here or on a Dask cluster); compute a run's loss landscape; find a learning
rate; start the dashboard.

Every command takes `--runs-dir` (default: $SGDPLUS_RUNS_DIR, else ./saved_runs). Bad
arguments get a one-line error on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from keras_sgdplus.lab.config import ScheduleSpec, TrainingConfig
    from keras_sgdplus.lab.datasets import DatasetInfo
    from keras_sgdplus.lab.runs import RunStore, RunWriter
    from keras_sgdplus.lab.stop_signal import StopSignal

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `sgdplus train: error: ...`."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _store(args: argparse.Namespace) -> Any:
    from keras_sgdplus.lab.runs import RunStore

    return RunStore(args.runs_dir)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"optimizer": {"momentum": 0.9}}` -> `{"optimizer.momentum": 0.9}`."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return "-" if value is None else str(value)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _progress(epochs: int) -> Any:
    def report(row: dict[str, Any]) -> None:
        done = int(row["epoch"]) + 1
        bar = "#" * round(20 * done / epochs)
        metrics = "  ".join(
            f"{key} {_format(value)}"
            for key, value in row.items()
            if key not in ("epoch", "wall_time", "samples_seen")
        )
        print(f"epoch {done}/{epochs} [{bar:<20}] {metrics}", file=sys.stderr, flush=True)

    return report


def _schedule(args: argparse.Namespace) -> ScheduleSpec:
    """--decay alone means the time_decay schedule; with another schedule it is an error."""
    from keras_sgdplus.lab.config import ScheduleSpec

    name = args.schedule
    if args.decay is not None and name == "constant":
        name = "time_decay"
    elif args.decay is not None and name != "time_decay":
        raise ValueError(
            f"`--decay` is the time_decay schedule; it can't go with --schedule {name}. "
            f"Received: decay={args.decay!r}, schedule={name!r}"
        )
    return ScheduleSpec(
        name=name,
        decay=ScheduleSpec.decay if args.decay is None else args.decay,
        drop=args.drop,
        every_steps=args.every_steps,
        rate=args.rate,
        warmup_steps=args.warmup_steps,
    )


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The `TrainingConfig` of `sgdplus train`'s arguments; ValueError naming a bad one."""
    from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig, parse_batch_size

    return TrainingConfig(
        dataset=args.dataset,
        data_path=args.data,
        target_column=args.target,
        validation_split=args.validation_split,
        standardize=not args.no_standardize,
        noise=args.noise,
        n_samples=args.samples,
        model=ModelSpec(
            kind=args.model,
            depth=args.depth,
            width=args.width,
            activation=args.activation,
            loss=args.loss,
        ),
        optimizer=OptimizerSpec(
            name=args.optimizer,
            learning_rate=args.learning_rate,
            momentum=args.momentum,
            nesterov=args.nesterov,
            convention=args.convention,
            schedule=_schedule(args),
        ),
        batch_size=parse_batch_size(args.batch_size),
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        backend=args.backend,
        name=args.name or "",
    )


def dataset_info(config: TrainingConfig) -> DatasetInfo:
    """The task and shape of the run's data: the registry's entry, or for the user's own file
    (dataset csv / npz) the file read once here (the run reads it again)."""
    from keras_sgdplus.lab import datasets
    from keras_sgdplus.lab.config import USER_FILE_KINDS
    from keras_sgdplus.lab.training import load_data

    if config.dataset in USER_FILE_KINDS:
        return load_data(config).info
    return datasets.DATASETS[config.dataset]


def command_train(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.accelerators import prepare_process
    from keras_sgdplus.lab.config import check_model_fits

    config = config_from_args(args)  # every check of the settings alone
    # The backend and the device are set up before Keras (imported by `training`) loads.
    backend = prepare_process(getattr(config, "backend", "auto"), config.device)
    quiet_tensorflow_import(backend)
    info = dataset_info(config)
    check_model_fits(config.model, info.task, info.input_shape)  # and the one with the data
    return _train_and_report(args, config, resume=None)


def command_resume(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.accelerators import prepare_process
    from keras_sgdplus.lab.jobs import resume_settings

    config, backend = resume_settings(_store(args), args.run, args.epochs)
    prepare_process(backend, config.device)  # where it trained, before Keras loads
    quiet_tensorflow_import(backend)
    return _train_and_report(args, config, resume=args.run)


def _train_and_report(args: argparse.Namespace, config: TrainingConfig, resume: str | None) -> int:
    from keras_sgdplus.lab import run_health
    from keras_sgdplus.lab.runs import RunStoreError
    from keras_sgdplus.lab.training import StopSignal, run_training

    stop = StopSignal()
    stop.install()
    store = _store(args)
    writer = None
    if args.queue or args.side_by_side:
        writer = _wait_turn(args, config, store, stop, resume)
        if writer is None:
            return 0
    run_id = run_training(
        config, store, stop, progress=_progress(config.epochs), resume=resume, writer=writer
    )
    try:
        meta = store.load_meta(run_id)
    except RunStoreError:
        if store.path_of(run_id, must_exist=False).is_dir():
            raise
        # `sgdplus delete --force` stopped the run, then deleted it
        print(f"sgdplus {args.command}: stopped, and deleted from {store.root}", file=sys.stderr)
        print(run_id)
        return 0
    if meta["status"] == "failed":
        print(f"sgdplus {args.command}: failed: {meta.get('error')}", file=sys.stderr)
    elif meta["status"] != "completed":
        print(f"sgdplus {args.command}: {meta['status']}", file=sys.stderr)
    for warning in run_health.warnings_of(meta):  # judged at the run's end (lab/run_health.py)
        print(f"sgdplus {args.command}: warning: {warning.text()}", file=sys.stderr)
    print(run_id)
    return 1 if meta["status"] == "failed" else 0


def _wait_turn(
    args: argparse.Namespace,
    config: TrainingConfig,
    store: RunStore,
    stop: StopSignal,
    resume: str | None,
) -> RunWriter | None:
    """`--queue`: the run, queued, once its turn has come (`run_queue`); None (its id
    printed) when it was stopped while it waited."""
    from keras_sgdplus.lab import run_queue
    from keras_sgdplus.lab.jobs import queue_for

    queue, side_by_side = dataclasses.astuple(queue_for(config, args.side_by_side or 1))
    writer = run_queue.open_queued(store, config, queue, side_by_side, resume=resume)

    def tell(ahead: int) -> None:
        print(
            f"sgdplus {args.command}: run {writer.run_id} is queued ({queue} queue, "
            f"{side_by_side} at a time; {ahead} before it)",
            file=sys.stderr,
        )

    if run_queue.wait_turn(store, writer, stop, queue, side_by_side, on_queued=tell) is None:
        print(f"sgdplus {args.command}: stopped while it waited", file=sys.stderr)
        print(writer.run_id)
        return None
    return writer


def command_runs(args: argparse.Namespace) -> int:
    runs = _store(args).list_runs()
    if args.json:
        print(json.dumps([run.__dict__ for run in runs], indent=2, default=str))
        return 0
    rows = [["run id", "name", "status", "dataset", "optimizer", "final loss", "final val loss"]]
    for run in runs:
        if not run.readable:
            rows.append([run.run_id, "", "unreadable", run.reason or "", "", "", ""])
            continue
        optimizer = run.config.get("optimizer", {})
        rows.append(
            [
                run.run_id,
                run.name,
                run.status,
                str(run.config.get("dataset", "")),
                str(optimizer.get("name", "")),
                _format(run.summary.get("final_loss")),
                _format(run.summary.get("final_val_loss")),
            ]
        )
    print(_table(rows) if len(rows) > 1 else "No runs in this store.")
    return 0


def command_show(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab import run_health

    run = _store(args).load(args.run)
    if args.json:
        print(json.dumps(run.meta, indent=2, default=str))
        return 0
    meta = run.meta
    print(f"{meta['name']}  ({run.run_id}, {meta['status']})")
    if meta.get("error"):
        print(f"error: {meta['error']}")
    for warning in run_health.warnings_of(meta, lambda: run.batches):  # older runs: its files
        print(f"warning: {warning.text()}")
    for section in ("config", "summary", "environment"):
        print(f"\n{section}:")
        shown = {k: v for k, v in (meta.get(section) or {}).items() if k != "warnings"}
        for key, value in flatten(shown).items():
            print(f"  {key}: {_format(value)}")
    print(f"\n{len(run.batches)} batches, {len(run.epochs)} epochs recorded")
    return 0


def command_landscape(args: argparse.Namespace) -> int:
    """Computes the run's landscape in this process, stores it in the run's folder, and
    prints its summary (or, with --json, the surface on its plane)."""
    import numpy as np

    from keras_sgdplus.lab.accelerators import prepare_process
    from keras_sgdplus.lab.run_landscape import LandscapeOptions, as_json, compute_and_store

    options = LandscapeOptions(
        directions=args.directions,
        resolution=args.resolution,
        span=args.span,
        samples=args.samples,
        seed=args.seed,
    )
    store = _store(args)
    store.load_meta(args.run)  # an unknown run is refused before Keras loads
    backend = prepare_process(args.backend, "auto")
    quiet_tensorflow_import(backend)
    result, details = compute_and_store(store, args.run, options)
    if args.json:
        print(json.dumps(as_json(result)))
        return 0
    alpha, beta, loss = result["alpha"], result["beta"], result["loss"]
    print(f"run {args.run}: {options.directions} landscape, {len(alpha)}x{len(beta)} grid")
    print(f"  alpha in [{alpha[0]:.4g}, {alpha[-1]:.4g}], beta in [{beta[0]:.4g}, {beta[-1]:.4g}]")
    print(f"  loss at the final weights: {float(result['center_loss']):.6g}")
    print(f"  loss on the grid: {np.nanmin(loss):.6g} to {np.nanmax(loss):.6g}")
    explained = result["explained_variance"]
    if options.directions == "pca":
        print(f"  explained variance: {explained[0]:.1%} and {explained[1]:.1%}")
    print(f"  path: {len(result['path'])} weight snapshots")
    print(
        f"  {details['train_samples']} training samples, {details['seconds']:.2f} s "
        f"on {details['backend']}; stored in {store.path_of(args.run) / 'landscape'}"
    )
    return 0


def command_compare(args: argparse.Namespace) -> int:
    store = _store(args)
    runs = [store.load(run_id) for run_id in args.runs]
    configs = [flatten(run.meta.get("config") or {}) for run in runs]
    keys = sorted({key for config in configs for key in config})
    differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    header = ["", *[run.meta["name"] for run in runs]]
    rows = [header, ["run id", *[run.run_id for run in runs]]]
    rows += [[key, *[_format(config.get(key)) for config in configs]] for key in differing]
    results = [
        "status",
        "final_loss",
        "best_loss",
        "final_val_loss",
        "best_val_loss",
        "final_accuracy",
        "final_val_accuracy",
        "elapsed_s",
        "samples_per_s",
    ]
    for key in results:
        values = [
            run.meta["status"] if key == "status" else (run.meta.get("summary") or {}).get(key)
            for run in runs
        ]
        if any(value is not None for value in values):
            rows.append([key, *[_format(value) for value in values]])
    print("settings that differ, then results:" if differing else "same settings; results:")
    print(_table(rows))
    return 0


def command_export(args: argparse.Namespace) -> int:
    if args.tensorboard is None:
        _store(args).export_csv(args.run, args.curve, sys.stdout)
        return 0
    try:
        from keras_sgdplus.lab.tensorboard_export import export_tensorboard

        folder = export_tensorboard(_store(args), args.run, args.tensorboard)
    except ImportError:
        raise ValueError(
            "--tensorboard needs the tensorboard package: pip install tensorboard"
        ) from None
    print(f"wrote {folder} (view it with: tensorboard --logdir {args.tensorboard})")
    return 0


def command_delete(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.runs import RunIsLiveError

    try:
        _store(args).delete(args.run, force=args.force)
    except RunIsLiveError as error:
        hint = "" if args.force else f" (`sgdplus stop {args.run}`, or delete with --force)"
        raise ValueError(f"{error}{hint}") from None
    print(f"deleted {args.run}")
    return 0


def command_stop(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.jobs import request_stop

    store = _store(args)
    if not request_stop(store, args.run):
        status = store.load_meta(args.run)["status"]
        raise ValueError(f"run {args.run} is not training (its status is {status})")
    print(f"stop requested: run {args.run} ends after its current chunk of steps")
    return 0


def command_lr_find(args: argparse.Namespace) -> int:
    """`sgdplus lr-find`: the learning-rate range test of a run of these settings, in this
    process (`lab/range_test.py`); prints the suggested rate, or with --json the curve."""
    from keras_sgdplus.lab.accelerators import prepare_process
    from keras_sgdplus.lab.config import check_model_fits
    from keras_sgdplus.lab.lr_find_jobs import checked_options

    config = config_from_args(args)
    options = checked_options(
        {
            "start": args.start,
            "end": args.end,
            "steps": args.steps,
            "beta": args.beta,
            "divergence": args.divergence,
            "rule": args.rule,
        }
    )
    backend = prepare_process(config.backend, config.device)  # before Keras loads
    quiet_tensorflow_import(backend)
    info = dataset_info(config)
    check_model_fits(config.model, info.task, info.input_shape)
    from keras_sgdplus.lab.range_test import find_learning_rate

    result = find_learning_rate(config, **options)
    if args.json:
        keys = ("learning_rate", "loss", "smoothed", "suggestion")
        print(json.dumps({key: result.to_dict()[key] for key in keys}))
        return 0
    if result.suggestion is None:
        print("sgdplus lr-find: no step had a finite loss; no rate to suggest", file=sys.stderr)
        return 1
    first, last = result.learning_rate[0], result.learning_rate[-1]
    print(
        f"{len(result.loss)} steps from {first:.3g} to {last:.3g}; the {result.rule} rule "
        f"suggests a learning rate of:",
        file=sys.stderr,
    )
    print(f"{result.suggestion:.6g}")
    return 0


def add_lr_find_parser(commands: Any, options: argparse.ArgumentParser) -> None:
    """`sgdplus lr-find`: the train options and the range test's own."""
    from keras_sgdplus.lab import lr_find

    parser = commands.add_parser(
        "lr-find",
        parents=[options],
        help="find a learning rate: a range test (Smith 2017) with these training settings",
    )
    parser.add_argument(
        "--start", type=float, default=lr_find.DEFAULT_START, help="the first rate (1e-7)"
    )
    parser.add_argument("--end", type=float, default=lr_find.DEFAULT_END, help="the last (10)")
    parser.add_argument(
        "--steps", type=int, default=lr_find.DEFAULT_STEPS, help="steps of the sweep (100)"
    )
    parser.add_argument(
        "--beta", type=float, default=lr_find.DEFAULT_BETA, help="the loss's smoothing (0.98)"
    )
    parser.add_argument(
        "--divergence",
        type=float,
        default=lr_find.DEFAULT_DIVERGENCE,
        help="stop once the smoothed loss passes this many times its best (4)",
    )
    parser.add_argument(
        "--rule",
        choices=tuple(lr_find.RULES),
        default=lr_find.DEFAULT_RULE,
        help=f"how the rate is read off the curve (default {lr_find.DEFAULT_RULE}; see README)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"learning_rate": [...], "loss": [...], "smoothed": [...], "suggestion": x}',
    )
    parser.set_defaults(handler=command_lr_find, epochs=1, name=None)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


# --- sweeps ---------------------------------------------------------------------------------------

#: The options a sweep may vary (`sweeps.SWEEP_AXES`), as the parser names them.
SWEEP_OPTIONS = {
    "learning_rate": "--learning-rate",
    "momentum": "--momentum",
    "nesterov": "--nesterov",
    "batch_size": "--batch-size",
    "schedule": "--schedule",
    "decay": "--decay",
}


def sweep_spec_from_args(args: argparse.Namespace) -> Any:
    """The `SweepSpec` of `sgdplus sweep`'s arguments: an axis option given one value is a
    fixed setting, given several (a list, a range) a swept one; every other option is a
    fixed setting as in `sgdplus train`. ValueError naming a bad argument."""
    from keras_sgdplus.lab.sweeps import (
        SweepSpec,
        config_with,
        expand,
        parse_axis_values,
        parse_seeds,
    )

    values = {
        axis: parse_axis_values(axis, getattr(args, axis))
        for axis in SWEEP_OPTIONS
        if getattr(args, axis) is not None
    }
    fixed = {axis: found[0] for axis, found in values.items() if len(found) == 1}
    axes = {axis: found for axis, found in values.items() if len(found) > 1}
    # The base run: train's defaults for the axis options, then the fixed values; --decay
    # alone means the time_decay schedule, as in `sgdplus train`.
    base_args = argparse.Namespace(**vars(args))
    base_args.learning_rate, base_args.momentum, base_args.nesterov = 0.01, 0.0, False
    base_args.batch_size, base_args.schedule, base_args.decay = "32", "constant", None
    if "decay" in values and "schedule" not in values:
        fixed["schedule"] = "time_decay"
    base_args.name = ""
    base = config_with(config_from_args(base_args), fixed)
    seeds = parse_seeds(args.seeds, first=args.seed) if args.seeds is not None else (args.seed,)
    name = args.name or f"{base.dataset}: {' x '.join(axes) or 'seeds'}"
    spec = SweepSpec(name=name, base=base, axes=axes, seeds=seeds)
    expand(spec)  # every run's config checked now: a bad value's ValueError names it
    return spec


def _run_line(runs: RunStore, run_id: str, axes: Any) -> str:
    """One finished run of a sweep as a progress line: its swept settings, seed, status and
    best validation loss."""
    from keras_sgdplus.lab.sweeps import swept_settings

    meta = runs.load_meta(run_id)
    settings = swept_settings(meta["config"], axes)
    shown = "  ".join(f"{axis}={_format(value)}" for axis, value in settings.items())
    best = (meta.get("summary") or {}).get("best_val_loss")
    return (
        f"{run_id}  {shown}  seed={meta['config']['seed']}  {meta['status']}  "
        f"best val loss {_format(best)}"
    )


def command_sweep(args: argparse.Namespace) -> int:
    """`sgdplus sweep`: runs the grid here (a LocalCluster of --workers processes) or on
    --cluster, blocking; a line per finished run on stderr, the sweep's id last on stdout.
    Ctrl-C stops the sweep (its running runs end `stopped`, the others are not started)."""
    from keras_sgdplus.lab import datasets
    from keras_sgdplus.lab.accelerators import resolve_backend
    from keras_sgdplus.lab.config import USER_FILE_KINDS, check_model_fits
    from keras_sgdplus.lab.sweep_runner import run_sweep

    spec = sweep_spec_from_args(args)
    if args.workers is not None and args.cluster is not None:
        raise ValueError(
            "`--workers` is for a sweep on this machine; a cluster has its own workers. "
            f"Received: workers={args.workers!r}, cluster={args.cluster!r}"
        )
    resolve_backend(spec.base.backend, fresh_process=True)  # one installed, before the record
    if spec.base.dataset in USER_FILE_KINDS:  # read once here, as `train` does (loads Keras)
        info = dataset_info(spec.base)
    else:  # the registry's entry: the coordinator never loads Keras
        info = datasets.DATASETS[spec.base.dataset]
    check_model_fits(spec.base.model, info.task, info.input_shape)
    runs = _store(args)
    where = args.cluster or f"this machine ({args.workers or os.cpu_count()} workers)"
    print(f"sgdplus sweep: {spec.run_count} runs on {where}", file=sys.stderr, flush=True)
    finished = []

    def report(run_id: str, status: str) -> None:
        finished.append(run_id)
        line = _run_line(runs, run_id, spec.axes)
        print(f"[{len(finished)}/{spec.run_count}] {line}", file=sys.stderr, flush=True)

    sweep_id = run_sweep(
        spec, runs.root, cluster=args.cluster, workers=args.workers, on_run_done=report
    )
    return _sweep_outcome(args, sweep_id)


def _sweep_outcome(args: argparse.Namespace, sweep_id: str) -> int:
    from keras_sgdplus.lab.sweeps import SweepStore

    record = SweepStore(_store(args).root).load(sweep_id)
    if record["status"] == "failed":
        print(f"sgdplus sweep: failed: {record.get('error')}", file=sys.stderr)
    elif record["status"] != "completed":
        print(f"sgdplus sweep: {record['status']}", file=sys.stderr)
    print(sweep_id)
    return 1 if record["status"] == "failed" else 0


def command_sweeps(args: argparse.Namespace) -> int:
    """`sgdplus sweeps`: the sweeps of the runs folder, newest first."""
    from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore, runs_of

    records = SweepStore(_store(args).root).list_sweeps()
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return 0
    listing = _store(args).list_runs() if records else []
    rows = [["sweep id", "name", "status", "where", "runs", "axes"]]
    for record in records:
        spec = SweepSpec.from_dict(record["spec"])
        stored = len(runs_of(listing, record["id"]))
        rows.append(
            [
                record["id"],
                record["name"],
                record["status"],
                record["where"],
                f"{stored}/{spec.run_count}",
                " x ".join(f"{axis} ({len(v)})" for axis, v in spec.axes.items()) or "-",
            ]
        )
    print(_table(rows) if len(rows) > 1 else "No sweeps in this store.")
    return 0


def command_sweep_stop(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.sweep_runner import request_stop
    from keras_sgdplus.lab.sweeps import SweepStore

    status = SweepStore(_store(args).root).load(args.sweep)["status"]
    if status != "running":
        raise ValueError(f"sweep {args.sweep} is not running (its status is {status})")
    request_stop(_store(args).root, args.sweep)
    print(
        f"stop requested: sweep {args.sweep} starts no more runs; its running runs end after "
        "their current chunk of steps"
    )
    return 0


def command_sweep_delete(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.sweep_runner import delete_sweep

    delete_sweep(_store(args).root, args.sweep)
    print(f"deleted sweep {args.sweep} and its runs")
    return 0


def add_sweep_parsers(commands: Any, runs_dir: argparse.ArgumentParser) -> None:
    """`sgdplus sweep`, `sweeps`, `sweep-stop`, `sweep-delete`."""
    sweep = commands.add_parser(
        "sweep",
        parents=[runs_dir, run_options(sweep=True)],
        help="a grid of runs over learning rate, momentum, Nesterov, batch size, schedule, "
        "decay and seeds, here or on a Dask cluster",
        description="Each of --learning-rate, --momentum, --nesterov, --batch-size, "
        "--schedule and --decay takes one value (fixed) or several (swept): a list "
        "0.01,0.03,0.1, or for numbers a range START:STOP:N (evenly spaced) or "
        "START:STOP:Nlog (evenly spaced in log). Every other option is fixed, as in "
        "`sgdplus train`. The runs are the product of the swept values, each with every seed.",
    )
    sweep.add_argument("--epochs", type=_positive_int, default=10)
    sweep.add_argument("--name", help="the sweep's name (default: the dataset and the axes)")
    sweep.add_argument(
        "--seeds",
        help="a count N (seeds --seed .. --seed+N-1) or a list 0,5,7 (default: --seed alone)",
    )
    sweep.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="a Dask scheduler's address (tcp://host:8786) whose workers see this runs "
        "folder at the same path (default: worker processes on this machine)",
    )
    sweep.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="runs at once on this machine (default: its cores)",
    )
    sweep.set_defaults(handler=command_sweep)

    listing = commands.add_parser("sweeps", parents=[runs_dir], help="list the sweeps")
    listing.add_argument("--json", action="store_true", help="the sweeps' records as JSON")
    listing.set_defaults(handler=command_sweeps)

    stop = commands.add_parser(
        "sweep-stop",
        parents=[runs_dir],
        help="stop a sweep: no more runs start, the running ones stop (from any host)",
    )
    stop.add_argument("sweep", help="the sweep id")
    stop.set_defaults(handler=command_sweep_stop)

    delete = commands.add_parser(
        "sweep-delete", parents=[runs_dir], help="delete a sweep that has ended, and its runs"
    )
    delete.add_argument("sweep", help="the sweep id")
    delete.set_defaults(handler=command_sweep_delete)


def run_options(sweep: bool = False) -> _Parser:
    """A run's settings as options: `train`, `lr-find` and `sweep` share them. With `sweep`,
    the settings a sweep may vary (`sweeps.SWEEP_AXES`) take text: one value (fixed) or
    several, "0.01,0.03,0.1" or a range "1e-3:1:5log" (swept); `--nesterov` then takes
    true/false values."""
    from keras_sgdplus.lab.config import (
        BACKENDS,
        CONVENTIONS,
        DEVICES,
        MODEL_KINDS,
        OPTIMIZERS,
        SCHEDULES,
    )

    options = _Parser(add_help=False)
    options.add_argument(
        "--dataset",
        default="digits",
        help="a registry name (see `sgdplus datasets`), or csv / npz with --data",
    )
    options.add_argument("--data", help="the CSV or NPZ file for --dataset csv / npz")
    options.add_argument("--target", help="the CSV's target column")
    swept = " (a sweep: several values, see `sgdplus sweep --help`)" if sweep else ""
    options.add_argument(
        "--batch-size",
        default=None if sweep else "32",
        help="'full' (gradient descent), 'online' (1), or a number (default 32)" + swept,
    )
    number = str if sweep else float
    options.add_argument(
        "--learning-rate", type=number, default=None if sweep else 0.01, help="default 0.01" + swept
    )
    options.add_argument(
        "--momentum", type=number, default=None if sweep else 0.0, help="default 0" + swept
    )
    if sweep:
        options.add_argument("--nesterov", help="true or false, or both: false,true")
    else:
        options.add_argument("--nesterov", action="store_true")
    options.add_argument("--convention", choices=CONVENTIONS, default="keras")
    options.add_argument(
        "--decay",
        type=number,
        help="tf.keras's inverse-time decay per step: lr / (1 + decay * t) "
        "(the time_decay schedule)" + swept,
    )
    options.add_argument(
        "--schedule",
        choices=None if sweep else tuple(SCHEDULES),  # a sweep's names: checked by the config
        default=None if sweep else "constant",
        help="; ".join(f"{k}: {v}" for k, v in SCHEDULES.items()) + swept,
    )
    options.add_argument(
        "--every-steps",
        type=int,
        default=100,
        help="step / exponential: the period in steps (default 100)",
    )
    options.add_argument("--drop", type=float, default=0.5, help="step: the factor (default 0.5)")
    options.add_argument(
        "--rate", type=float, default=0.5, help="exponential: the factor per period (default 0.5)"
    )
    options.add_argument(
        "--warmup-steps", type=int, default=0, help="cosine: steps of linear warm-up (default 0)"
    )
    options.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgdplus")
    options.add_argument("--validation-split", type=float, default=0.2)
    options.add_argument(
        "--no-standardize",
        action="store_true",
        help="keep the features as they are (default: standardised)",
    )
    options.add_argument("--noise", type=float, default=0.1, help="generated 2-D sets: noise")
    options.add_argument("--samples", type=int, help="generated sets: how many points")
    options.add_argument(
        "--model",
        choices=MODEL_KINDS,
        default="auto",
        help="auto: a small CNN for images, an MLP otherwise",
    )
    options.add_argument(
        "--loss",
        default="auto",
        help="auto, sparse_categorical_crossentropy, categorical_crossentropy, "
        "binary_crossentropy, mse or mae (must fit the task)",
    )
    options.add_argument("--depth", type=int, default=2, help="hidden layers (default 2)")
    options.add_argument("--width", type=int, default=64, help="units per layer")
    options.add_argument("--activation", default="relu")
    options.add_argument("--device", choices=DEVICES, default="auto")
    options.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="the Keras backend to train on; auto: the fastest installed (JAX, else TensorFlow)",
    )
    options.add_argument(
        "--seed", type=int, default=0, help="the seed (a sweep: the first of --seeds N)"
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    """The arguments as text -> number conversions only: the ranges of the settings are
    checked once, by `TrainingConfig` (`lab/config.py`), whose errors name the setting."""
    from keras_sgdplus.lab.config import BACKENDS

    parser = _Parser(prog="sgdplus", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    runs_dir = _Parser(add_help=False)
    runs_dir.add_argument(
        "--runs-dir",
        default=os.environ.get("SGDPLUS_RUNS_DIR") or None,
        help="the saved-runs folder (default: $SGDPLUS_RUNS_DIR or ./saved_runs)",
    )

    queueing = _Parser(add_help=False)
    queueing.add_argument(
        "--queue",
        action="store_true",
        help="wait for the run's turn: one run at a time per device (CPU, GPU) among the "
        "queued runs of this runs folder, the dashboard's included",
    )
    queueing.add_argument(
        "--side-by-side",
        type=_positive_int,
        metavar="N",
        help="with --queue (implied): let up to N queued runs train at once on the device",
    )
    options = run_options()  # a run's settings: `train` and `lr-find`
    train = commands.add_parser(
        "train", parents=[runs_dir, queueing, options], help="train a model, record a run"
    )
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--name", help="a name for the run (any text)")
    train.set_defaults(handler=command_train)
    add_lr_find_parser(commands, options)
    add_sweep_parsers(commands, runs_dir)

    listing = commands.add_parser("runs", parents=[runs_dir], help="list the runs")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=command_runs)

    show = commands.add_parser("show", parents=[runs_dir], help="one run's settings and results")
    show.add_argument("run")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=command_show)

    compare = commands.add_parser(
        "compare", parents=[runs_dir], help="the settings that differ, and the results"
    )
    compare.add_argument("runs", nargs="+")
    compare.set_defaults(handler=command_compare)

    export = commands.add_parser(
        "export",
        parents=[runs_dir],
        help="a curve as CSV on stdout, or the run as TensorBoard event files",
    )
    export.add_argument("run")
    export.add_argument("--curve", choices=("batches", "epochs"), default="epochs")
    export.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write the run's event files under DIR/RUN_ID (batches, epochs, hyperparameters)",
    )
    export.set_defaults(handler=command_export)

    delete = commands.add_parser("delete", parents=[runs_dir], help="delete a run")
    delete.add_argument("run")
    delete.add_argument(
        "--force",
        action="store_true",
        help="a run still training is asked to stop, then deleted",
    )
    delete.set_defaults(handler=command_delete)

    resume = commands.add_parser(
        "resume",
        parents=[runs_dir, queueing],
        help="continue a stopped or interrupted run from its checkpoint, or extend it",
    )
    resume.add_argument("run", help="the run id")
    resume.add_argument(
        "--epochs",
        type=_positive_int,
        help="train up to this many epochs in all (default: the run's own)",
    )
    resume.set_defaults(handler=command_resume)

    stop = commands.add_parser(
        "stop", parents=[runs_dir], help="stop a run that is training (from any host)"
    )
    stop.add_argument("run", help="the run id")
    stop.set_defaults(handler=command_stop)

    landscape = commands.add_parser(
        "landscape",
        parents=[runs_dir],
        help="the loss surface around a run's final weights, with the path its weights took",
    )
    landscape.add_argument("run", help="the run id (a finished run)")
    landscape.add_argument(
        "--directions",
        choices=("pca", "random"),
        default="pca",
        help="pca: the plane of the weights' path (its first two principal components; "
        "default); random: two filter-normalised Gaussian directions (Li et al. 2018)",
    )
    landscape.add_argument(
        "--resolution", type=int, default=31, help="grid points along each axis (default 31)"
    )
    landscape.add_argument(
        "--span",
        type=float,
        help="the grid is [-span, span] on both axes (default: 1 for random directions, "
        "the path's extent for pca)",
    )
    landscape.add_argument(
        "--samples",
        type=int,
        default=2048,
        help="the size of the seeded training subset the loss is computed on (default 2048)",
    )
    landscape.add_argument("--seed", type=int, default=0, help="of the subset and directions")
    landscape.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="the Keras backend that computes the losses (auto: JAX when installed)",
    )
    landscape.add_argument(
        "--json",
        action="store_true",
        help='print {"alpha", "beta", "loss" (rows follow beta), "path", '
        '"explained_variance", "center_loss"} for scripts',
    )
    landscape.set_defaults(handler=command_landscape)

    datasets = commands.add_parser("datasets", help="list the datasets")
    datasets.set_defaults(handler=command_datasets)

    dashboard = commands.add_parser(
        "dashboard", parents=[runs_dir], help="start the Streamlit dashboard"
    )
    dashboard.add_argument("--port", type=_positive_int, default=8501, help="default: 8501")
    dashboard.add_argument(
        "--address",
        help="the address to listen on (default: localhost, this machine only; the dashboard "
        "starts jobs and writes files, so expose it only on a network you trust: the page "
        "then shows a warning)",
    )
    dashboard.set_defaults(handler=command_dashboard)

    results = commands.add_parser(
        "sweep-results",
        parents=[runs_dir],
        help="a sweep's configurations ranked by best validation loss (mean over seeds)",
    )
    results.add_argument("sweep", help="the sweep id")
    results.add_argument(
        "--json",
        action="store_true",
        help='print {"sweep", "configs": [{<swept settings>, "runs", "best_val_loss_mean", '
        '"best_val_loss_std"}, ...]} for scripts (best first; null where undefined)',
    )
    results.set_defaults(handler=command_sweep_results)
    return parser


def command_sweep_results(args: argparse.Namespace) -> int:
    """A sweep's results (`lab.sweep_results`): each configuration with its seeds pooled,
    the mean and sample std of the runs' best validation losses, best first."""
    from keras_sgdplus.lab import sweep_results

    root = _store(args).root
    if args.json:
        print(json.dumps(sweep_results.as_json(root, args.sweep), indent=1, allow_nan=False))
        return 0
    results = sweep_results.load_results(root, args.sweep)
    counts = results.progress()
    print(
        f"{results.name} ({results.sweep_id}): {results.record.get('status')}, "
        f"{counts['done']} of {counts['total']} runs done, {counts['running']} running"
    )
    rows = [["rank", *results.axes, "scored/runs", "best val loss (mean)", "std", "run ids"]]
    for config in results.configs:
        settings = [sweep_results.value_text(v) for v in config.settings.values()]
        runs = ", ".join(run.run_id for run in config.runs) or "-"
        mean, std = config.best_val_loss_mean, config.best_val_loss_std
        rows.append([str(config.rank), *settings, f"{config.scored}/{len(config.runs)}"])
        rows[-1] += [_format(mean), _format(std), runs]
    print(_table(rows))
    return 0


def dashboard_command(args: argparse.Namespace) -> list[str]:
    """The `streamlit run` command line that `sgdplus dashboard` executes.

    The safe server settings live in `dashboard/.streamlit/config.toml`, next to the app,
    where Streamlit reads them from any folder; only the port, and an address the user
    chose, are passed as flags.
    """
    from keras_sgdplus.lab import serving

    command = [sys.executable, "-m", "streamlit", "run", str(serving.app_path())]
    command.append(f"--server.port={args.port}")
    if args.address is not None:
        command.append(f"--server.address={args.address}")
    return command


def command_dashboard(args: argparse.Namespace) -> int:
    if args.runs_dir:
        os.environ["SGDPLUS_RUNS_DIR"] = str(args.runs_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = dashboard_command(args)
    sys.stdout.flush()
    os.execv(command[0], command)  # Ctrl+C and signals reach Streamlit itself


def command_datasets(args: argparse.Namespace) -> int:
    from keras_sgdplus.lab.datasets import list_datasets

    rows = [["name", "task", "shape", "size", "source", "description"]]
    rows += [
        [d.name, d.task, "x".join(map(str, d.input_shape)), str(d.size), d.source, d.description]
        for d in list_datasets()
    ]
    print(_table(rows))
    return 0


def quiet_tensorflow_import(backend: str = "auto") -> None:
    """Starts TensorFlow with its C++ start-up log lines (CUDA, oneDNN) kept off stderr, when
    `backend` (auto, jax, tensorflow; see `accelerators.resolve_backend`) is TensorFlow; on
    JAX it imports nothing (TensorFlow would cost seconds, and GPU memory).

    TensorFlow 2.21 writes them before its logging is set up, past TF_CPP_MIN_LOG_LEVEL.
    """
    from keras_sgdplus.lab.accelerators import resolve_backend

    try:
        if resolve_backend(backend) != "tensorflow":
            return
    except ValueError:  # no backend to be had: the command that needs one says so
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow as tf

                tf.config.list_logical_devices()  # CUDA's probe logs here on a CPU-only host
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "datasets":
            quiet_tensorflow_import()  # `train` does it once its backend is set up
        return int(args.handler(args))
    except ValueError as error:  # bad values, unknown runs and datasets: one line, status 2
        print(f"sgdplus {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
