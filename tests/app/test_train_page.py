"""The Train page under Streamlit's AppTest: its controls, the plan it previews, a real
training worker started from it, a reload that finds the running job, Stop, and errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from keras_sgdplus.lab import datasets
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.jobs import request_stop, start_training
from keras_sgdplus.lab.runs import RunStore
from tests.app.elements import chart_titled, drawn_charts

WORKER_TIMEOUT = 300.0
PAGE = Path(__file__).parents[2] / "dashboard" / "app_pages" / "train.py"


def wait_until_finished(store: RunStore, run_id: str, timeout: float = WORKER_TIMEOUT) -> dict:
    """The run's metadata once no worker holds it any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not store.is_active(run_id):
            meta = store.load_meta(run_id)
            if meta["status"] != "running":
                return meta
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running after {timeout} s")


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def test_every_control_explains_what_it_does_to_training(page):
    app = page("train")
    assert not app.exception
    widgets = [*app.selectbox, *app.slider, *app.number_input, *app.radio, *app.checkbox]
    widgets += [*app.select_slider, *app.text_input]
    assert len(widgets) >= 18
    for widget in widgets:
        assert widget.help, f"{widget.label!r} has no help text"
    assert "overshoot" in app.number_input(key="learning_rate").help
    assert "speed" in app.slider(key="momentum").help
    assert "look-ahead" in app.radio(key="mode").help
    assert "noise" in app.radio(key="batch_choice").help.lower()
    assert app.button[0].label == "Start training"


def test_the_form_previews_the_planned_learning_rate_per_step(page):
    app = page("train")
    app.selectbox(key="dataset").set_value("iris")
    app.selectbox(key="schedule").set_value("time_decay").run()
    app.number_input(key="decay").set_value(0.01)
    app.number_input(key="epochs").set_value(20)
    app.number_input(key="learning_rate").set_value(0.2).run()
    assert not app.exception
    # iris: 150 samples, 20% held out -> 120 to train; batches of 32 -> 4 steps per epoch
    steps = 4 * 20
    assert f"{steps} steps: 4 per epoch x 20 epochs." in texts(app.caption)
    preview = chart_titled(app, "Learning rate per step (planned)").data
    assert list(preview.step) == list(range(steps))
    expected = np.float32(0.2) / (1.0 + 0.01 * np.arange(steps))
    np.testing.assert_allclose(preview.learning_rate, expected, rtol=1e-6)


def test_a_generated_set_shows_its_points(page):
    app = page("train")
    app.selectbox(key="dataset").set_value("spiral").run()
    app.number_input(key="n_samples").set_value(200).run()
    points = drawn_charts(app)[0].data
    x, y = datasets.generate_2d("spiral", 200, 0.1, seed=0)
    np.testing.assert_allclose(points[["x1", "x2"]].to_numpy(), x)
    assert list(points.target) == [str(v) for v in y]
    assert "Two interleaved spirals" in texts(app.caption)


def test_a_model_that_does_not_fit_the_data_is_refused_before_start(page, runs_dir: Path):
    app = page("train")
    app.selectbox(key="model_kind").set_value("cnn").run()
    assert not app.exception
    assert "`model` cnn needs images" in texts(app.error)
    assert not [b for b in app.button if b.label == "Start training"]
    assert not list(runs_dir.iterdir())  # no worker, no run


@pytest.mark.parametrize(
    ("widgets", "message"),
    [
        ({"learning_rate": float("nan")}, "Received: learning_rate=nan"),
        ({"learning_rate": float("inf")}, "`learning_rate` must be a finite number >= 0"),
        ({"schedule": "time_decay", "decay": float("inf")}, "Received: decay=inf"),
    ],
    ids=["learning_rate nan", "learning_rate inf", "decay inf"],
)
def test_a_setting_the_widgets_let_through_is_refused_before_start(
    runs_dir: Path, widgets: dict, message: str
):
    """The widgets bound every other setting to its range; what they let through is parsed
    (lab/config.py) and shown as the error, with no Start button and no worker."""
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in widgets.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception
    assert message in texts(app.error)
    assert not [b for b in app.button if b.label == "Start training"]
    assert not list(runs_dir.iterdir())


def test_start_trains_in_a_worker_and_shows_both_views(page, runs_dir: Path):
    app = page("train")
    app.selectbox(key="dataset").set_value("iris")
    app.radio(key="mode").set_value("Nesterov")
    app.slider(key="momentum").set_value(0.8)
    app.radio(key="batch_choice").set_value("custom").run()
    app.number_input(key="custom_batch").set_value(40)
    app.number_input(key="epochs").set_value(3)
    app.text_input(key="run_name").set_value("iris nesterov")
    # by its label: the batch size changed, so the linear-scaling offer's button comes first
    next(b for b in app.button if b.label == "Start training").click().run(timeout=WORKER_TIMEOUT)
    assert not app.exception

    store = RunStore(runs_dir)
    [summary] = store.list_runs()
    meta = wait_until_finished(store, summary.run_id)
    assert meta["status"] == "completed"
    assert meta["name"] == "iris nesterov"
    config = meta["config"]
    assert config["dataset"] == "iris"
    assert config["batch_size"] == 40
    assert config["epochs"] == 3
    assert config["optimizer"]["momentum"] == 0.8
    assert config["optimizer"]["nesterov"] is True

    app.slider(key="train-smooth").set_value(0.0).run()
    assert "Completed" in texts(app.success)
    batches = store.load_curve(summary.run_id, "batches")
    epochs = store.load_curve(summary.run_id, "epochs")
    assert len(batches) == 3 * 3  # 120 training samples in batches of 40
    drawn = chart_titled(app, "Loss per mini-batch").data
    drawn = drawn.drop_duplicates("step").sort_values("step")
    np.testing.assert_allclose(drawn.loss, batches.loss)
    np.testing.assert_allclose(drawn.smoothed, batches.loss)  # smoothing 0: the raw loss
    epoch_view = chart_titled(app, "Loss per epoch").data
    train = epoch_view[epoch_view.split == "train"].sort_values("epoch")
    np.testing.assert_allclose(train.value, epochs.loss)
    validation = epoch_view[epoch_view.split == "validation"].sort_values("epoch")
    np.testing.assert_allclose(validation.value, epochs.val_loss)
    assert len(chart_titled(app, "Accuracy per epoch").data)
    rates = chart_titled(app, "Learning rate per step").data
    np.testing.assert_allclose(rates.learning_rate, np.float32(0.05))

    store.delete(summary.run_id)  # deleted on the Compare page: the page goes back to the form
    app.run()
    assert not app.exception
    assert not app.error
    assert not app.get("vega_lite_chart")[1:]  # only the schedule preview is left
    assert "iris nesterov" not in [s.value for s in app.subheader]


def long_run(runs_dir: Path) -> str:
    return start_training(long_run_config(), runs_dir).run_id()


def long_run_config() -> TrainingConfig:
    return TrainingConfig(
        dataset="digits",
        model=ModelSpec(depth=4, width=512),  # wide: slow enough to be stopped on any engine
        optimizer=OptimizerSpec(learning_rate=0.001, momentum=0.9),
        batch_size=1,
        epochs=200,
        name="long online run",
    )


def test_a_reload_shows_the_running_job_and_stop_ends_it(runs_dir: Path):
    store = RunStore(runs_dir)
    run_id = long_run(runs_dir)  # started elsewhere (another tab, or `sgdplus train`)
    deadline = time.monotonic() + WORKER_TIMEOUT
    while store.load_curve(run_id, "batches").empty and time.monotonic() < deadline:
        time.sleep(0.2)
    app = AppTest.from_file(
        str(Path(__file__).parents[2] / "dashboard" / "app_pages" / "train.py"),
        default_timeout=120,
    )
    app.run()
    assert not app.exception
    assert app.subheader[0].value == "long online run"
    assert app.get("progress")
    stop = [b for b in app.button if b.label == "Stop training"]
    assert len(stop) == 1
    assert not [b for b in app.button if b.label == "Start training"]
    queue = [b for b in app.button if b.label == "Queue this run"]
    assert len(queue) == 1
    assert not queue[0].disabled
    stop[0].click().run()
    meta = wait_until_finished(store, run_id)
    assert meta["status"] == "stopped"
    assert 0 < meta["summary"]["steps"] < meta["summary"]["total_steps"]
    app.run()
    assert "stopped before the last epoch" in texts(app.info)
    assert not [b for b in app.button if b.label == "Stop training"]


def test_a_dataset_that_cannot_be_downloaded_ends_as_a_clear_message(
    page, runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # nothing cached there
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: no download
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    app = page("train")
    app.selectbox(key="dataset").set_value("mnist").run()
    assert "not downloaded yet" in texts(app.warning)
    app.button[0].click().run(timeout=WORKER_TIMEOUT)
    store = RunStore(runs_dir)
    [summary] = store.list_runs()
    meta = wait_until_finished(store, summary.run_id)
    assert meta["status"] == "failed"
    app.run()
    assert not app.exception
    message = texts(app.error)
    assert "The run failed" in message
    assert "mnist.npz" in message


def test_the_live_view_polls_a_long_run_less_often(page, runs_dir: Path):
    store = RunStore(runs_dir)
    writer = store.create("a long run", TrainingConfig(epochs=1).to_dict(), {})  # held: live
    writer.update(summary={"total_steps": 1_000_000, "steps_per_epoch": 1_000_000})
    try:
        n = 400_000  # 400k / 150k = 2.7 s: the charts every 4 s, 8 if a redraw is slow
        steps = np.arange(n)
        writer.append_batch_columns(
            {"step": steps, "epoch": np.zeros(n, dtype=int), "batch": steps,
             "loss": 1.0 / (steps + 1), "learning_rate": np.full(n, 0.01),
             "batch_size": np.ones(n, dtype=int), "samples_seen": steps + 1,
             "wall_time": steps * 1e-3, "grad_norm": 1.0 / (steps + 2)}
        )  # fmt: skip
        app = page("train")
        assert not app.exception
        assert app.subheader[0].value == "a long run"
        assert app.session_state["train_refresh_seconds"] in (4, 8)
        # the progress bar, from the last line of batches.csv alone
        [bar] = app.get("progress")
        assert bar.value == 40  # percent: 400,000 of 1,000,000 steps
        assert "step 400,000 of 1,000,000" in bar.proto.text
        assert f"last batch loss {1 / n:.4g}" in bar.proto.text
    finally:
        writer.close()
    app.run()
    assert app.session_state["train_refresh_seconds"] is None  # no longer live: no polling


def test_a_live_run_with_nothing_recorded_yet_shows_empty_charts_its_data_then_fills(
    page, runs_dir: Path
):
    """The charts are there from the moment the live view opens (the browser builds them
    while the worker starts); the first lines only fill them: same spec, data added."""
    store = RunStore(runs_dir)
    writer = store.create("a starting run", TrainingConfig(epochs=2).to_dict(), {})  # live
    writer.update(summary={"total_steps": 20, "steps_per_epoch": 10})
    titles = ["Loss per mini-batch", "Loss per epoch", "Learning rate per step"]
    try:
        app = page("train")
        assert not app.exception
        empty = {title: chart_titled(app, title) for title in titles}
        assert all(chart.data.empty for chart in empty.values())
        steps = np.arange(10)
        writer.append_batch_columns(
            {"step": steps, "epoch": np.zeros(10, dtype=int), "batch": steps,
             "loss": 1.0 / (steps + 1), "learning_rate": np.full(10, 0.01),
             "batch_size": np.ones(10, dtype=int), "samples_seen": steps + 1,
             "wall_time": steps * 1e-3, "grad_norm": 1.0 / (steps + 2)}
        )  # fmt: skip
        writer.append_epoch({"epoch": 0, "loss": 0.5, "wall_time": 0.01, "samples_seen": 10})
        app.run()
        assert not app.exception
        for title in titles:
            filled = chart_titled(app, title)
            assert len(filled.data) > 0
            assert spec_without_data(filled) == spec_without_data(empty[title])
    finally:
        writer.close()


def spec_without_data(chart) -> str:
    """A drawn chart's spec with its datasets' names (content hashes) made equal."""
    text = json.dumps(chart.spec, sort_keys=True)
    for name in chart.datasets:
        text = text.replace(json.dumps(name), '"DATA"')
    return text


def test_every_live_run_is_shown_with_its_own_stop_and_can_be_watched(page, runs_dir: Path):
    """Runs training elsewhere (another tab, `sgdplus train`, another host): the newest is
    watched, every other is listed with its progress, Stop and Watch."""
    store = RunStore(runs_dir)
    writers = {}
    for name in ("first elsewhere", "second elsewhere"):
        config = TrainingConfig(dataset="iris", epochs=3, name=name)
        writers[name] = store.create(name, config.to_dict(), {})
        writers[name].update(summary={"total_steps": 24, "steps_per_epoch": 8})
        time.sleep(1.1)  # run ids order by the second they were made
    try:
        app = page("train")
        assert not app.exception
        assert app.subheader[0].value == "second elsewhere"  # the newest
        assert "**Also live: training or queued** (1)" in texts(app.markdown)
        assert "first elsewhere" in texts(app.markdown)
        first = writers["first elsewhere"]
        app.button(key=f"stop-other-{first.run_id}").click().run()
        assert not app.exception
        assert first.stop_requested  # the request its worker polls, wherever it runs
        assert not writers["second elsewhere"].stop_requested
        app.button(key=f"watch-{first.run_id}").click().run()
        assert app.subheader[0].value == "first elsewhere"
        assert "second elsewhere" in texts(app.markdown)  # now listed below
    finally:
        for writer in writers.values():
            writer.close()


def test_continue_on_train_extends_the_run_just_watched(runs_dir: Path):
    from keras_sgdplus.lab.training import run_training

    store = RunStore(runs_dir)
    config = TrainingConfig(dataset="iris", model=ModelSpec(depth=1, width=8), epochs=2)
    run_id = run_training(config, store)
    app = AppTest.from_file(
        str(Path(__file__).parents[2] / "dashboard" / "app_pages" / "train.py"),
        default_timeout=120,
    )
    app.session_state["train_watched_run"] = run_id  # the run this tab just followed
    app.run()
    assert not app.exception
    assert "Completed" in texts(app.success)
    app.number_input(key=f"train-continue-epochs-{run_id}").set_value(3).run()
    app.button(key="train-continue").click().run()
    assert not app.exception
    meta = wait_until_finished(store, run_id)
    assert meta["status"] == "completed"
    assert store.load(run_id).epochs.epoch.tolist() == [0, 1, 2]


def test_a_run_started_while_another_trains_waits_its_turn_and_can_be_cancelled(
    runs_dir: Path,
):
    """Queue this run: the new run is `queued` in the store (its worker waits, Keras not
    loaded), listed below the run that trains with its place in the queue; Cancel takes it
    out (stopped, nothing trained); the running run was never disturbed."""
    store = RunStore(runs_dir)
    running = start_training(long_run_config(), runs_dir, side_by_side=1).run_id()
    deadline = time.monotonic() + WORKER_TIMEOUT
    while store.load_meta(running)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    app = AppTest.from_file(
        str(Path(__file__).parents[2] / "dashboard" / "app_pages" / "train.py"),
        default_timeout=180,
    )
    try:
        app.run()
        assert app.subheader[0].value == "long online run"
        app.selectbox(key="dataset").set_value("iris").run()
        app.text_input(key="run_name").set_value("waits its turn").run()
        next(b for b in app.button if b.label == "Queue this run").click().run()
        assert not app.exception
        queued = [r for r in store.list_runs() if r.name == "waits its turn"]
        assert len(queued) == 1
        assert queued[0].status == "queued"
        assert queued[0].active
        queued_id = queued[0].run_id
        assert app.subheader[0].value == "long online run"  # still watched
        assert "Queued for the CPU: 0 runs before it" in [p.proto.text for p in app.get("progress")]
        assert store.load_curve(queued_id, "batches").empty
        time.sleep(1.0)  # still waiting while the other trains
        assert store.load_meta(queued_id)["status"] == "queued"
        app.button(key=f"stop-other-{queued_id}").click().run()
        meta = wait_until_finished(store, queued_id)
        assert meta["status"] == "stopped"
        assert store.load_curve(queued_id, "batches").empty
        assert store.load_meta(running)["status"] == "running"
    finally:
        request_stop(store, running)
        wait_until_finished(store, running)


# --- guidance when a run goes wrong (lab/run_health.py) ---------------------------------------


def test_a_finished_run_that_exploded_says_so_with_what_to_try(runs_dir: Path):
    """Issue 11: online on digits at the default rate 0.05 and momentum 0.9 completes, its
    loss exploded and its accuracy at chance; the Train page says both, with the numbers,
    under the outcome."""
    from keras_sgdplus.lab.training import run_training

    store = RunStore(runs_dir)
    config = TrainingConfig(
        dataset="digits",
        batch_size=1,
        epochs=1,
        device="cpu",
        optimizer=OptimizerSpec(learning_rate=0.05, momentum=0.9),
    )
    run_id = run_training(config, store)
    summary = store.load_meta(run_id)["summary"]
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    app.session_state["train_watched_run"] = run_id
    app.run()
    assert not app.exception
    assert "Completed" in texts(app.success)
    shown = texts(app.warning)
    assert "The loss exploded." in shown
    assert f"the {summary['initial_loss']:.3g} of the first steps" in shown
    assert "At chance level." in shown
    assert f"{summary['final_val_accuracy']:.1%}" in shown
    assert "sgdplus lr-find" in shown
    assert "Goyal et al. 2017" in shown


def test_changing_the_batch_size_offers_the_linearly_scaled_rate(page):
    app = page("train")  # digits, batch 32, rate 0.05, SGDPlus
    assert not [b for b in app.button if b.key == "train_scale_rate"]
    app.radio(key="batch_choice").set_value("online").run()
    assert not app.exception
    scaled = float(f"{0.05 * 1 / 32:.4g}")
    offer = texts(app.info)
    assert f"lr·B1/B0 = 0.05·1/32 = {scaled:g}" in offer
    assert "linear scaling rule, Goyal et al. 2017" in offer
    assert "Find a learning rate" in offer
    app.button(key="train_scale_rate").click().run()
    assert not app.exception
    assert app.number_input(key="learning_rate").value == pytest.approx(scaled)
    assert not [b for b in app.button if b.key == "train_scale_rate"]  # done: no offer
    # full batch from there: the whole training set of digits, from the rate set for 1
    n_train = datasets.training_size(datasets.DATASETS["digits"].size, 0.2)
    app.radio(key="batch_choice").set_value("full").run()
    again = float(f"{scaled * n_train / 1:.4g}")
    assert f"lr·B1/B0 = {scaled:g}·{n_train:,}/1 = {again:g}" in texts(app.info)
    app.button(key="train_scale_rate").click().run()
    assert app.number_input(key="learning_rate").value == pytest.approx(again)


def test_a_rate_chosen_after_the_batch_size_is_not_scaled_again(page):
    app = page("train")
    app.radio(key="batch_choice").set_value("online").run()
    assert [b for b in app.button if b.key == "train_scale_rate"]
    app.number_input(key="learning_rate").set_value(0.002).run()  # the user's own choice
    assert not app.exception
    assert not [b for b in app.button if b.key == "train_scale_rate"]
    assert "linear scaling rule" not in texts(app.info)


def test_find_a_learning_rate_draws_the_curve_and_fills_in_the_suggestion(page, runs_dir: Path):
    """The button starts a real range-test worker; the page polls its record under
    .lr_find/ and, once it is there, draws the curve with the suggestion marked and puts the
    suggestion (to 3 significant digits) into Learning rate; a reload finds the chart."""
    from keras_sgdplus.lab.lr_find_charts import TITLE

    app = page("train")
    app.selectbox(key="dataset").set_value("iris")
    app.radio(key="mode").set_value("Plain SGD").run()
    app.button(key="train_lr_find").click().run()
    assert not app.exception
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not [chart for chart in drawn_charts(app) if chart.title == TITLE]:
        assert time.monotonic() < deadline, texts(app.caption)
        assert not app.error, texts(app.error)
        time.sleep(0.5)
        app.run()
    (record_file,) = (runs_dir / ".lr_find").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "done"
    assert record["config"]["dataset"] == "iris"
    assert record["config"]["optimizer"]["momentum"] == 0.0
    suggestion = record["result"]["suggestion"]
    filled = float(f"{suggestion:.3g}")
    assert app.number_input(key="learning_rate").value == pytest.approx(filled)
    chart = chart_titled(app, TITLE)
    curves = chart.data.dropna(subset=["curve"])
    assert len(curves) == 2 * len(record["result"]["loss"])
    marks = chart.data[chart.data["label"].notna()]
    assert list(marks.learning_rate) == pytest.approx([suggestion])
    assert f"suggests {filled:g}" in texts(app.caption)
    # another session with the same settings (a reload) finds the curve, and can use it
    again = AppTest.from_file(str(PAGE), default_timeout=120)
    again.run()
    again.selectbox(key="dataset").set_value("iris")
    again.radio(key="mode").set_value("Plain SGD").run()
    assert chart_titled(again, TITLE).data.shape == chart.data.shape
    assert again.number_input(key="learning_rate").value == pytest.approx(0.05)
    again.button(key="train_lr_find_use").click().run()
    assert again.number_input(key="learning_rate").value == pytest.approx(filled)
