"""Train: pick the data, the model and the optimizer, start a run, and watch it train.

The widgets' values become a `TrainingConfig` in `lab.config` (a bad one is an error above
Start); the run trains in a worker process (`lab.jobs`); this page only polls the run store.
A run that is training shows here after a reload, in a second tab, and when it was started
with `sgdplus train`.
"""

from __future__ import annotations

import time

import streamlit as st
from keras_sgdplus.dashboard.app_pages import common

from keras_sgdplus.lab import (
    accelerators,
    datasets,
    live,
    preview_charts,
    run_health,
    training,
    upload_summary,
    uploads,
)
from keras_sgdplus.lab import config as run_config
from keras_sgdplus.lab.jobs import request_stop, start_training
from keras_sgdplus.lab.lr_find import RangeTestResult
from keras_sgdplus.lab.lr_find_charts import range_test_chart
from keras_sgdplus.lab.lr_find_jobs import LrFindStore, settings_key, start_lr_find
from keras_sgdplus.lab.runs import LIVE_STATUSES, QUEUED, RunStore, RunStoreError
from keras_sgdplus.lab.schedules import schedule_curve

HELP = {
    "dataset": "What the model learns. Bundled and generated sets are on disk; MNIST, "
    "Fashion-MNIST and CIFAR-10 are downloaded by Keras the first time.",
    "upload": "A CSV with a header row (pick the target column), or an NPZ with arrays x and y.",
    "validation_split": "The share of samples held out to measure generalisation "
    "(the validation curves).",
    "standardize": "Shift and scale each input to mean 0 and variance 1 (training statistics). "
    "Unscaled inputs make the loss surface a narrow ravine that SGD crawls along.",
    "noise": "How noisy the generated points are: more noise, more overlap between classes.",
    "n_samples": "How many points to generate.",
    "model": "auto: a small CNN for images, an MLP otherwise.",
    "depth": "Hidden layers (MLP) or convolution blocks (CNN). 0: a linear model.",
    "width": "Units per hidden layer.",
    "activation": "The non-linearity between layers.",
    "loss": "auto: cross-entropy for classes, mean squared error for regression.",
    "optimizer": "SGDPlus is this project's SGD; Adam, AdamW and RMSprop are Keras baselines.",
    "learning_rate": "The step length: how far each update moves the weights along the "
    "negative gradient. Too small and training crawls; too large and it overshoots the "
    "valley, oscillates or diverges (the loss becomes NaN).",
    "mode": "Plain SGD steps along the current gradient only. Momentum lets the ball gather "
    "speed along directions the gradients agree on. Nesterov evaluates the step where "
    "momentum is about to carry the weights: a look-ahead correction that brakes earlier.",
    "momentum": "How much of the previous velocity each step keeps (mu). Like a heavy ball it "
    "gathers speed on long slopes and rolls through noise, but a large mu overshoots.",
    "convention": "keras: v = mu*v - lr*g; w = w + v (keras.optimizers.SGD). torch: "
    "b = mu*b + g; w = w - lr*b (torch.optim.SGD). The same path while the rate is constant.",
    "batch": "How many samples each step's gradient averages over. Full batch: the exact "
    "gradient, one step per epoch, smooth but slow. Online (1): a step per sample, very "
    "noisy. Mini-batches trade noise for speed; noise can help escape flat regions.",
    "batch_size": "Samples per mini-batch.",
    "epochs": "Passes over the training set.",
    "schedule": "How the learning rate changes over the steps of the run.",
    "decay": "lr_t = lr / (1 + decay * t), tf.keras's old `decay=` argument.",
    "drop": "The factor the rate is multiplied by at each drop.",
    "every_steps": "Steps between drops (step) or per factor `rate` (exponential).",
    "rate": "Exponential: lr_t = lr * rate ** (t / every_steps).",
    "warmup_steps": "Steps of linear warm-up from 0 before the cosine decay.",
    "seed": "Seeds the split, the weights and the shuffling: the same seed repeats a run.",
    "device": "Where the run trains: auto uses the GPU when the backend sees one.",
    "backend": "The Keras backend the run trains on. auto: the fastest installed (JAX, then "
    "TensorFlow). Both compile each chunk of steps as one program.",
    "name": "A name for the run in Compare (default: dataset, optimizer, rate, batch size).",
}
UPLOAD = "upload"
BATCH_CHOICES = {
    "full": "Full batch",
    "online": "Online (1)",
    "32": "Mini-batch 32",
    "custom": "Custom",
}
WATCHED = "train_watched_run"
#: The stop button of a live run: (label, toast, help), for a run training and one queued.
STOP_TEXTS = {
    False: (
        "Stop training",
        "Stopping after the current chunk of steps…",
        "Ends the run after the chunk of steps in progress (well under a second).",
    ),
    True: (
        "Cancel",
        "Taken out of the queue: it is marked stopped.",
        "Takes the run out of the queue before it trains: it is marked stopped, and "
        "Continue can start it later.",
    ),
}
REFRESH = "train_refresh_seconds"  # the live panel's polling interval now
LR_FIND_ASKED = "train_lr_find_asked"  # the range test this session started: fill it in
LR_FIND_FILL = "train_lr_find_fill"  # a suggested rate for the learning-rate input
RATE_BATCH = "train_rate_batch"  # the learning rate and the batch size it was chosen for


@st.cache_data(max_entries=32)
def generated_points(name: str, n_samples: int, noise: float, seed: int):
    return datasets.generate_2d(name, n_samples, noise, seed)


@st.cache_data(max_entries=8)
def uploaded_summary(path: str, target_column: str | None, split: float, seed: int):
    """What the page shows of an upload (its `DatasetInfo`, the training-set size), parsed
    in a child process (`lab.upload_summary`): the server never holds the parsed arrays,
    and keeps only this small answer."""
    return upload_summary.summarize_upload(path, target_column, split, seed)


def pick_data(store: RunStore) -> dict | None:
    """The data controls; returns the config's data fields and the training-set size."""
    names = [*datasets.DATASETS, UPLOAD]
    name = st.selectbox(
        "Dataset",
        names,
        format_func=lambda n: "Upload a CSV or NPZ…" if n == UPLOAD else n,
        help=HELP["dataset"],
        key="dataset",
    )
    split = st.slider(
        "Validation split", 0.05, 0.5, 0.2, 0.05, help=HELP["validation_split"], key="split"
    )
    standardize = st.checkbox(
        "Standardize inputs", True, help=HELP["standardize"], key="standardize"
    )
    fields: dict = {"validation_split": split, "standardize": standardize}
    if name == UPLOAD:
        return pick_upload(store, fields)
    name = str(name)
    info = datasets.DATASETS[name]
    classes = f", {info.num_classes} classes" if info.num_classes else ""
    st.caption(
        f"{info.description} {info.size:,} samples of shape {info.input_shape}, "
        f"{info.task}{classes}."
    )
    size = info.size
    if info.source == "download" and not datasets.is_cached(name):
        st.warning(
            f"{name} is not downloaded yet: the run downloads it into "
            f"{datasets.keras_cache_dir()} (needs internet)."
        )
    if info.source == "generated":
        noise = st.slider("Noise", 0.0, 0.5, 0.1, 0.01, help=HELP["noise"], key="noise")
        size = int(
            st.number_input(
                "Points",
                20,
                20000,
                datasets.DEFAULT_GENERATED_SAMPLES,
                50,
                help=HELP["n_samples"],
                key="n_samples",
            )
        )
        x, y = generated_points(name, size, noise, int(st.session_state.get("seed", 0)))
        st.altair_chart(preview_charts.scatter_preview(x, y, info.task), width="stretch")
        fields.update(noise=noise, n_samples=size)
    fields.update(dataset=name, n_train=datasets.training_size(size, split))
    fields.update(task=info.task, input_shape=info.input_shape)
    return fields


def pick_upload(store: RunStore, fields: dict) -> dict | None:
    upload = st.file_uploader(
        "Data file", type=list(uploads.UPLOAD_KINDS), help=HELP["upload"], key="upload"
    )
    if upload is None:
        st.info("Upload a file to train on your own data.")
        return None
    try:
        path = uploads.save_upload(upload.name, upload.getvalue(), store.root / "uploads")
        target = None
        if path.suffix == ".csv":
            columns = uploads.csv_columns(path)
            target = st.selectbox(
                "Target column", columns, index=len(columns) - 1, key="target_column"
            )
        info, n_train = uploaded_summary(str(path), target, fields["validation_split"], 0)
    except ValueError as error:
        st.error(f"This file cannot be used: {error}")
        return None
    st.caption(
        f"{upload.name}: {info.size:,} samples of shape {info.input_shape}, {info.task}"
        + (f", {info.num_classes} classes." if info.num_classes else ".")
    )
    kind = path.suffix.lstrip(".")
    fields.update(dataset=kind, data_path=str(path), target_column=target)
    fields["n_train"] = n_train
    fields.update(task=info.task, input_shape=info.input_shape)
    return fields


def pick_model(task: str | None) -> dict:
    """The model controls; returns their values (the fields of `config.ModelSpec`)."""
    kind = st.selectbox("Model", run_config.MODEL_KINDS, help=HELP["model"], key="model_kind")
    depth = st.slider("Hidden layers", 0, 8, 2, help=HELP["depth"], key="depth")
    width = st.select_slider(
        "Width", [4, 8, 16, 32, 64, 128, 256, 512], 64, help=HELP["width"], key="width"
    )
    activation = st.selectbox(
        "Activation", run_config.ACTIVATIONS, help=HELP["activation"], key="activation"
    )
    losses = ["auto", *(run_config.LOSSES[task] if task else ())]
    loss = st.selectbox("Loss", losses, help=HELP["loss"], key="loss")
    return {"kind": kind, "depth": depth, "width": width, "activation": activation, "loss": loss}


def pick_optimizer() -> dict:
    """The optimizer controls; returns their values (the fields of `config.OptimizerSpec`)."""
    name = st.selectbox(
        "Optimizer", list(run_config.OPTIMIZERS), help=HELP["optimizer"], key="optimizer"
    )
    if LR_FIND_FILL in st.session_state:  # a range test's suggestion, before the input exists
        st.session_state["learning_rate"] = st.session_state.pop(LR_FIND_FILL)
    rate = st.number_input(
        "Learning rate",
        min_value=0.0,
        value=0.05,
        step=0.01,
        format="%g",
        help=HELP["learning_rate"],
        key="learning_rate",
    )
    momentum, nesterov, convention = 0.0, False, "keras"
    if name == "sgdplus":
        mode = st.radio(
            "Update", ["Plain SGD", "Momentum", "Nesterov"], 1, horizontal=True,
            help=HELP["mode"], key="mode",
        )  # fmt: skip
        momentum = st.slider(
            "Momentum",
            0.0,
            0.99,
            0.9,
            0.01,
            help=HELP["momentum"],
            disabled=mode == "Plain SGD",
            key="momentum",
        )
        momentum = 0.0 if mode == "Plain SGD" else momentum
        nesterov = mode == "Nesterov"
        convention = str(
            st.radio(
                "Convention",
                run_config.CONVENTIONS,
                horizontal=True,
                help=HELP["convention"],
                key="convention",
            )
        )
    return {
        "name": name,
        "learning_rate": rate,
        "momentum": momentum,
        "nesterov": nesterov,
        "convention": convention,
    }


def pick_schedule() -> dict:
    """The schedule controls; returns their values (the fields of `config.ScheduleSpec`)."""
    schedules = run_config.SCHEDULES
    name = st.selectbox(
        "Learning-rate schedule",
        list(schedules),
        format_func=lambda n: f"{n}: {schedules[n]}",
        help=HELP["schedule"],
        key="schedule",
    )
    values: dict = {"name": name}
    if name == "time_decay":
        values["decay"] = st.number_input(
            "decay", 0.0, None, 1e-3, 1e-3, format="%g", help=HELP["decay"], key="decay"
        )
    if name == "step":
        values["drop"] = st.slider("drop", 0.05, 1.0, 0.5, 0.05, help=HELP["drop"], key="drop")
    if name in ("step", "exponential"):
        values["every_steps"] = int(
            st.number_input(
                "every_steps", 1, None, 100, 10, help=HELP["every_steps"], key="every_steps"
            )
        )
    if name == "exponential":
        values["rate"] = st.slider("rate", 0.05, 1.0, 0.5, 0.05, help=HELP["rate"], key="rate")
    if name == "cosine":
        values["warmup_steps"] = int(
            st.number_input(
                "warmup_steps", 0, None, 0, 10, help=HELP["warmup_steps"], key="warmup_steps"
            )
        )
    return values


def pick_batch_size() -> int | None:
    choice = st.radio(
        "Batch size",
        list(BATCH_CHOICES),
        2,
        format_func=BATCH_CHOICES.get,
        horizontal=True,
        help=HELP["batch"],
        key="batch_choice",
    )
    if choice == "custom":
        return int(
            st.number_input(
                "Samples per batch", 1, None, 64, help=HELP["batch_size"], key="custom_batch"
            )
        )
    return run_config.parse_batch_size(choice)


def scaling_offer(batch_size: int | None, n_train: int | None, optimizer: dict) -> None:
    """After the batch size changed from B0 to B1 under the same SGDPlus rate: the rate the
    linear scaling rule gives, with a button that sets it, and the range test."""
    rate = optimizer["learning_rate"]
    chosen = st.session_state.get(RATE_BATCH)
    if not isinstance(chosen, dict) or chosen.get("rate") != rate:
        st.session_state[RATE_BATCH] = {"rate": rate, "batch": batch_size}  # chosen for this
        return
    if chosen["batch"] == batch_size or not n_train or not rate or optimizer["name"] != "sgdplus":
        return
    old, new, scaled = run_health.linear_scaling(rate, chosen["batch"], batch_size, n_train)
    if old == new:
        return
    st.info(
        f"The batch size went from {old:,} to {new:,} under the rate chosen for {old:,}. "
        f"Scale the learning rate to lr·B1/B0 = {rate:g}·{new:,}/{old:,} = {scaled:g} "
        "(linear scaling rule, Goyal et al. 2017), or let the range test suggest one "
        '("Find a learning rate", or `sgdplus lr-find`).'
    )

    def scale() -> None:
        st.session_state["learning_rate"] = scaled
        st.session_state[RATE_BATCH] = {"rate": scaled, "batch": batch_size}

    st.button(
        f"Scale the learning rate to {scaled:g}",
        key="train_scale_rate",
        on_click=scale,
        help="Sets the learning rate to the one the linear scaling rule gives.",
    )


def new_run_form(store: RunStore, training_now: bool) -> None:
    data_column, model_column, optimizer_column, run_column = st.columns(4, gap="medium")
    with data_column:
        st.subheader("Data")
        data = pick_data(store)
    with model_column:
        st.subheader("Model")
        model = pick_model(data.get("task") if data else None)
    with optimizer_column:
        st.subheader("Optimizer")
        optimizer = pick_optimizer()
    with run_column:
        st.subheader("Run")
        batch_size = pick_batch_size()
        scaling_offer(batch_size, data.get("n_train") if data else None, optimizer)
        epochs = st.number_input("Epochs", 1, 10000, 20, help=HELP["epochs"], key="epochs")
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, help=HELP["seed"], key="seed")
        backend = st.selectbox(
            "Backend",
            ["auto", *accelerators.installed_backends()],
            help=HELP["backend"],
            key="backend",
        )
        gpu = accelerators.worker_sees_gpu(backend or "auto")
        devices = ["auto", "cpu", *(["gpu"] if gpu else [])]
        device = st.selectbox("Device", devices, help=HELP["device"], key="device")
        name = st.text_input(
            "Run name (optional)", help=HELP["name"], max_chars=200, key="run_name"
        )
    st.subheader("Learning-rate schedule")
    schedule_column, preview_column = st.columns([1, 3], gap="medium")
    with schedule_column:
        schedule = pick_schedule()
    if data is None:
        return
    fields = ("dataset", "data_path", "target_column", "validation_split", "standardize")
    settings = {key: data[key] for key in (*fields, "noise", "n_samples") if key in data}
    settings.update(
        model=model,
        optimizer={**optimizer, "schedule": schedule},
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        device=device,
        backend=backend,
        name=name.strip(),
    )
    with preview_column:
        try:  # the widgets' values parsed once, then checked against the chosen data
            config = run_config.TrainingConfig.from_dict(settings)
            run_config.check_model_fits(config.model, data["task"], data["input_shape"])
        except ValueError as error:
            st.error(str(error))
            return
        steps = training.planned_steps(data["n_train"], config.batch_size, config.epochs)
        spec = config.optimizer
        rates = schedule_curve(spec.schedule, spec.learning_rate, steps)
        steps_per_epoch = steps // config.epochs
        st.altair_chart(preview_charts.schedule_preview(rates, steps_per_epoch), width="stretch")
        st.caption(f"{steps:,} steps: {steps_per_epoch:,} per epoch x {config.epochs} epochs.")
    start = st.button(
        "Queue this run" if training_now else "Start training",
        type="primary",
        help="Trains in a worker process once the runs before it on this device have ended "
        "(Runs at once per device, in the sidebar); it shows below meanwhile."
        if training_now
        else "Trains in a worker process; the page follows it live.",
    )
    if start:
        start_run(store, config, training_now)
    lr_find_panel(store, config)


def lr_find_panel(store: RunStore, config: run_config.TrainingConfig) -> None:
    """The "Find a learning rate" button: the range test of these settings in a worker
    (`lab.lr_find_jobs`); its curve, with the suggestion marked, once it is stored. The
    result belongs to the settings (not to this session), so a reload finds it."""
    key = settings_key(config)
    record = LrFindStore(store.root).read(key)
    running = record is not None and record["status"] == "running"
    clicked = st.button(
        "Find a learning rate",
        key="train_lr_find",
        disabled=running,
        help="A learning-rate range test (Smith 2017) with these settings, in a worker: 100 "
        "steps at rates from 1e-7 to 10, then the rate the curve suggests goes into "
        "Learning rate. See the README's 'Finding a learning rate'.",
    )
    if clicked:
        try:
            key = start_lr_find(config, store.root)
        except (ValueError, RuntimeError) as error:
            st.error(f"The range test did not start: {error}")
            return
        st.session_state[LR_FIND_ASKED] = key
        running = True
    if running or record is not None:
        st.fragment(run_every=1.0 if running else None)(lr_find_result)(store, key, running)


def lr_find_result(store: RunStore, key: str, was_running: bool) -> None:
    """The range test's state: running, failed, or its chart; when it has just ended, the
    whole page again (the suggestion into Learning rate when this session asked for it)."""
    record = LrFindStore(store.root).read(key)
    if record is None:
        return
    if record["status"] == "running":
        st.caption("Finding a learning rate: the range test runs in a worker…")
        return
    if st.session_state.get(LR_FIND_ASKED) == key:  # ended: its suggestion into the input
        st.session_state.pop(LR_FIND_ASKED)
        suggestion = (record.get("result") or {}).get("suggestion")
        if record["status"] == "done" and suggestion is not None:
            st.session_state[LR_FIND_FILL] = float(f"{suggestion:.3g}")
        st.rerun(scope="app")
    if was_running:
        st.rerun(scope="app")  # the whole page: this panel stops polling
    if record["status"] != "done":
        st.error(f"The range test failed: {record.get('error')}")
        return
    result = RangeTestResult.from_dict(record["result"])
    st.altair_chart(range_test_chart(result), width="stretch")
    if result.suggestion is None:
        st.warning("No step of the range test had a finite loss: no rate to suggest.")
        return
    suggested = float(f"{result.suggestion:.3g}")
    st.caption(
        f"{len(result.loss)} steps from {result.learning_rate[0]:.3g} to "
        f"{result.learning_rate[-1]:.3g}: each step's own loss (light) and its smoothing "
        f"(dark). The {result.rule} rule suggests {suggested:g}; judge it on the curve: "
        "a good rate is one where the loss still falls clearly, well before it turns up."
    )

    def use() -> None:
        st.session_state["learning_rate"] = suggested

    st.button(
        f"Use {suggested:g}",
        key="train_lr_find_use",
        on_click=use,
        help="Sets the learning rate to the range test's suggestion.",
    )


def start_run(store: RunStore, config: run_config.TrainingConfig, training_now: bool) -> None:
    """Starts the run in a worker, through its device's queue; the page follows it unless
    another run is live (it then shows among the other live runs)."""
    job = start_training(config, store.root, side_by_side=common.side_by_side())
    try:
        with st.spinner("Starting the training worker…"):
            run_id = job.run_id(timeout=180)
    except (ValueError, RuntimeError, TimeoutError) as error:
        job.stop()
        st.error(f"The run did not start: {error}")
        return
    common.training_jobs()[run_id] = job
    if not training_now:
        st.session_state[WATCHED] = run_id
        st.rerun()
    st.toast("Queued: it trains when its turn comes (below, with the other live runs).")
    st.rerun()


def status_panel(store: RunStore, run_id: str) -> None:
    """The watched run's name and status: while it trains, its progress and a Stop button
    (refreshed every `live.PROGRESS_REFRESH_SECONDS` from the run's metadata and last batch
    line); then its outcome."""
    try:
        meta = store.load_meta(run_id)
        live_now = meta["status"] in LIVE_STATUSES and store.is_active(run_id)
        progress = live.run_progress(store, meta) if live_now else None
    except RunStoreError as error:
        st.error(f"This run cannot be shown: {error}")
        return
    st.subheader(meta["name"])
    if progress is not None:
        bar, stop = st.columns([5, 1])
        bar.progress(progress.fraction or 0.0, text=progress.text)
        label, text, help_text = STOP_TEXTS[meta["status"] == QUEUED]
        if stop.button(label, key=f"stop-{run_id}", help=help_text) and request_stop(store, run_id):
            st.toast(text)
    else:
        show_outcome(meta)
        show_warnings(store, run_id, meta)
        if st.session_state.get(REFRESH) is not None:  # it was live when the page ran
            st.rerun()  # the whole page: final curves, the form's Start button free again
        summary = meta.get("summary") or {}
        if common.continue_controls(
            store, run_id, meta["status"], meta["config"], summary, meta["name"], "train"
        ):
            st.rerun(scope="app")  # live again: the page follows it


def curves_panel(store: RunStore, run_id: str, options: dict) -> None:
    """The watched run's curves; while it trains, redrawn every 2-8 s
    (`lab.live.refresh_seconds`) from the lines added since the last redraw."""
    started = time.thread_time()  # this script thread's CPU: what the worker beside it loses
    try:
        name = store.load_meta(run_id)["name"]
        batches = curve_follower(store, run_id, "batches").update()
        epochs = curve_follower(store, run_id, "epochs").update()
    except RunStoreError:
        return  # the status panel above says why
    polling = st.session_state.get(REFRESH)  # None: these curves are not polled
    common.curve_views(
        {name: batches}, {name: epochs}, options, key="train", placeholders=polling is not None
    )
    if polling is None:
        return
    # slower as the run grows or the machine is busy, never faster while it trains: each
    # change of interval reruns the whole page
    wanted = max(live.refresh_seconds(len(batches), time.thread_time() - started), polling)
    if wanted != polling:
        st.session_state[REFRESH] = wanted
        st.rerun()  # the whole page: the fragment polls at the new interval


def curve_follower(store: RunStore, run_id: str, curve: str) -> live.CurveFollower:
    """This session's follower of a curve of the watched run (a new one for another run): a
    refresh reads only the lines appended since the last one (`lab.live.CurveFollower`)."""
    key = f"train_follow_{curve}"
    follower = st.session_state.get(key)
    if not (isinstance(follower, live.CurveFollower) and follower.follows(store, run_id, curve)):
        follower = st.session_state[key] = live.CurveFollower(store, run_id, curve)
    return follower


def show_outcome(meta: dict) -> None:
    status, summary = meta["status"], meta.get("summary") or {}
    results = [
        f"{label} {summary[key]:.4g}"
        for key, label in (
            ("final_loss", "loss"),
            ("final_val_loss", "validation loss"),
            ("final_val_accuracy", "validation accuracy"),
            ("final_val_mae", "validation MAE"),
        )
        if isinstance(summary.get(key), int | float)
    ]
    text = f"{status.capitalize()}" + (f": {', '.join(results)}" if results else "")
    if status == "completed":
        st.success(text)
    elif status == "stopped":
        st.info(f"{text} (stopped before the last epoch).")
    elif status == "diverged":
        st.warning(
            f"{text}. The loss became infinite or NaN: the learning rate is too large for "
            "this problem (try a smaller rate or less momentum)."
        )
    elif status == "failed":
        st.error(f"The run failed: {meta.get('error') or 'no message'}")
    else:  # interrupted (runs.INTERRUPTED)
        st.warning(f"{text}. {meta.get('error') or ''}")


def show_warnings(store: RunStore, run_id: str, meta: dict) -> None:
    """What went wrong in a run that ended (`lab.run_health`: the loss exploded, it sits at
    chance, it did not learn): what happened and what to try; computed from the run's batch
    curve for a run stored without them."""
    try:
        found = run_health.warnings_of(meta, lambda: store.load_curve(run_id, "batches"))
    except RunStoreError:
        return  # the run cannot be read: the status above says so
    for warning in found:
        st.warning(f"**{warning.title}.** {warning.detail}\n\n{warning.advice}", icon="⚠️")


def other_live_runs_panel(store: RunStore, watched: str | None) -> None:
    """Every other run training now (started here, in another tab, by `sgdplus train` or
    on another host sharing the folder): its progress, Stop, and Watch to show it above."""
    others = [run_id for run_id in live.live_runs(store) if run_id != watched]
    if not others:
        return
    st.markdown(f"**Also live: training or queued** ({len(others)})")
    for run_id in others:
        try:
            meta = store.load_meta(run_id)
            progress = live.run_progress(store, meta)
        except RunStoreError:
            continue  # ended and deleted meanwhile
        name, bar, watch, stop = st.columns([2, 4, 1, 1])
        name.markdown(meta["name"])
        bar.progress(progress.fraction or 0.0, text=progress.text)
        if watch.button("Watch", key=f"watch-{run_id}", help="Show this run above."):
            st.session_state[WATCHED] = run_id
            st.rerun(scope="app")
        label, text, help_text = STOP_TEXTS[meta["status"] == QUEUED]
        if stop.button(label, key=f"stop-other-{run_id}", help=help_text) and request_stop(
            store, run_id
        ):
            st.toast(f"{meta['name']}: {text}")


st.title("Train")
store = common.run_store()
common.reap_finished_jobs()
live_now = live.live_runs(store)
chosen = st.session_state.get(WATCHED)
# the run the user chose while it trains, else the newest live one, else the last watched
live_run = chosen if chosen in live_now else (live_now[0] if live_now else None)
watched = live_run or chosen
if watched and not store.path_of(watched, must_exist=False).is_dir():
    st.session_state.pop(WATCHED, None)  # deleted on the Compare page meanwhile
    watched = None
if watched:
    st.session_state[WATCHED] = watched
    options = common.curve_controls("train")
    # a live run: its status every 2 s, its charts at the interval their panel last asked
    # for (2 s to begin with)
    is_live = watched == live_run
    refresh = (st.session_state.get(REFRESH) or live.CHART_REFRESH_SECONDS[0]) if is_live else None
    st.session_state[REFRESH] = refresh
    progress_every = live.PROGRESS_REFRESH_SECONDS if is_live else None
    st.fragment(run_every=progress_every)(status_panel)(store, watched)
    st.fragment(run_every=refresh)(curves_panel)(store, watched, options)
    st.divider()
if len(live_now) > (1 if live_run else 0):
    st.fragment(run_every=live.PROGRESS_REFRESH_SECONDS)(other_live_runs_panel)(store, live_run)
    st.divider()
with st.expander("New run", expanded=live_run is None):
    new_run_form(store, training_now=live_run is not None)
