"""Sweeps as data: the grid's expansion against an independent construction, axis values and
ranges against NumPy, the record store (its coordinator lock and stop request), and `sgdplus
sweep`'s arguments turned into a SweepSpec (no run is trained here)."""

import dataclasses
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from keras_sgdplus.lab.cli import build_parser, main, sweep_spec_from_args
from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.sweeps import (
    SWEEP_AXES,
    SweepSpec,
    SweepStore,
    config_with,
    expand,
    parse_axis_values,
    parse_seeds,
    swept_settings,
)

BASE = TrainingConfig(dataset="iris", epochs=2)


def test_a_grid_expands_to_exactly_its_runs():
    axes = {
        "learning_rate": (0.01, 0.03, 0.1),
        "momentum": (0.0, 0.9),
        "nesterov": (False, True),
        "batch_size": (1, 32, None),
    }
    seeds = (0, 1, 2)
    spec = SweepSpec("grid", BASE, axes, seeds)
    configs = expand(spec, "sweep-20260101-000000-abcdef")
    # the same grid built independently: every combination once, with every seed
    expected = [
        (lr, m, n, b, seed) for lr, m, n, b in itertools.product(*axes.values()) for seed in seeds
    ]
    got = [
        (
            c.optimizer.learning_rate,
            c.optimizer.momentum,
            c.optimizer.nesterov,
            c.batch_size,
            c.seed,
        )
        for c in configs
    ]
    assert got == expected
    assert len(configs) == spec.run_count == 3 * 2 * 2 * 3 * 3
    assert len(set(got)) == len(got)
    for config in configs:
        assert config.sweep_id == "sweep-20260101-000000-abcdef"
        assert config.sweep_name == "grid"
        # everything that is not swept stays the base's
        unswept = dataclasses.replace(
            config,
            optimizer=BASE.optimizer,
            batch_size=BASE.batch_size,
            seed=BASE.seed,
            sweep_id="",
            sweep_name="",
        )
        assert unswept == BASE


def test_schedule_and_decay_axes_reach_the_schedule():
    spec = SweepSpec(
        "decay",
        BASE,
        {"schedule": ("constant", "time_decay"), "decay": (1e-3, 1e-2)},
    )
    configs = expand(spec)
    got = [(c.optimizer.schedule.name, c.optimizer.schedule.decay) for c in configs]
    assert got == list(itertools.product(("constant", "time_decay"), (1e-3, 1e-2)))
    assert swept_settings(configs[3], spec.axes) == {"schedule": "time_decay", "decay": 1e-2}
    assert swept_settings(configs[3].to_dict(), ["decay"]) == {"decay": 1e-2}


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("1e-3:1:4log", np.geomspace(1e-3, 1, 4)),
        ("1e-4:0.1:7log", np.geomspace(1e-4, 0.1, 7)),
        ("0:0.9:4", np.linspace(0, 0.9, 4)),
        ("0.5:0.99:3", np.linspace(0.5, 0.99, 3)),
        ("0.1:0.1:1", np.linspace(0.1, 0.1, 1)),
    ],
)
def test_ranges_match_numpy(text, reference):
    values = parse_axis_values("learning_rate", text)
    assert len(values) == len(reference)
    np.testing.assert_allclose(values, reference, rtol=1e-11)
    assert values[0] == float(text.split(":")[0])


def test_lists_of_each_axis():
    assert parse_axis_values("learning_rate", "0.01, 0.03,0.1") == (0.01, 0.03, 0.1)
    assert parse_axis_values("nesterov", "false,TRUE") == (False, True)
    assert parse_axis_values("batch_size", "online,32,full") == (1, 32, None)
    assert parse_axis_values("schedule", "constant,cosine") == ("constant", "cosine")
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("3", first=5) == (5, 6, 7)
    assert parse_seeds("0,5,7") == (0, 5, 7)


@pytest.mark.parametrize(
    ("axis", "text", "named"),
    [
        ("learning_rate", "0.1,abc", "learning_rate"),
        ("learning_rate", "", "learning_rate"),
        ("learning_rate", "0.1,,0.2", "learning_rate"),
        ("learning_rate", "0:1:5log", "learning_rate"),
        ("nesterov", "yes", "nesterov"),
        ("batch_size", "0", "batch_size"),
        ("epochs", "1,2", "axis"),
    ],
)
def test_bad_axis_values_name_the_argument(axis, text, named):
    with pytest.raises(ValueError, match=f"`{named}`.*Received"):
        parse_axis_values(axis, text)


def test_bad_specs_name_the_setting():
    with pytest.raises(ValueError, match="`momentum` must be in"):
        expand(SweepSpec("bad", BASE, {"momentum": (0.5, 1.5)}))
    with pytest.raises(ValueError, match="`learning_rate` lists a value twice"):
        SweepSpec("bad", BASE, {"learning_rate": (0.1, 0.1)})
    with pytest.raises(ValueError, match="`seeds`"):
        SweepSpec("bad", BASE, {}, seeds=(1, 1))
    with pytest.raises(ValueError, match="at most 1000 runs"):
        SweepSpec("big", BASE, {"learning_rate": tuple(np.linspace(0.01, 1, 251))}, (0, 1, 2, 3))
    with pytest.raises(ValueError, match="`name`"):
        SweepSpec(" ", BASE, {})


def test_spec_round_trips_through_its_record(tmp_path):
    spec = SweepSpec("round", BASE, {"learning_rate": (0.01, 0.1), "batch_size": (8, None)}, (3,))
    store = SweepStore(tmp_path)
    sweep_id = store.create(spec, where="tcp://127.0.0.1:8786")
    record = json.loads((tmp_path / ".sweeps" / f"{sweep_id}.json").read_text())
    assert record["status"] == "running"
    assert record["where"] == "tcp://127.0.0.1:8786"
    assert store.spec(sweep_id) == spec
    assert expand(store.spec(sweep_id), sweep_id) == expand(spec, sweep_id)
    assert [r["id"] for r in store.list_sweeps()] == [sweep_id]


def test_a_running_sweep_whose_coordinator_died_reads_failed(tmp_path):
    """A coordinator holds the sweep's lock; killed (here: a child process that took the
    lock and exited without a last word), the first reader stores the sweep `failed`."""
    spec = SweepSpec("lost", BASE, {"learning_rate": (0.01, 0.1)})
    code = (
        "import sys; from keras_sgdplus.lab.sweeps import SweepStore, SweepSpec;"
        "import json; store = SweepStore(sys.argv[1]);"
        "spec = SweepSpec.from_dict(json.loads(sys.argv[2]));"
        "print(store.create(spec, hold=True)); import os; os._exit(0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), json.dumps(spec.to_dict())],
        capture_output=True,
        text=True,
        check=True,
    )
    sweep_id = result.stdout.strip()
    store = SweepStore(tmp_path)
    record = store.load(sweep_id)
    assert record["status"] == "failed"
    assert "coordinator" in record["error"]
    assert not (tmp_path / ".sweeps" / f"{sweep_id}.lock").exists()


def test_a_held_sweep_reads_running_and_its_final_status_stays(tmp_path):
    spec = SweepSpec("held", BASE, {"learning_rate": (0.01, 0.1)})
    coordinator = SweepStore(tmp_path)
    sweep_id = coordinator.create(spec, hold=True)
    reader = SweepStore(tmp_path)
    assert reader.load(sweep_id)["status"] == "running"
    assert reader.coordinated(sweep_id)
    with pytest.raises(ValueError, match="another process"):
        reader.hold(sweep_id)
    assert not reader.stop_requested(sweep_id)
    reader.request_stop(sweep_id)
    assert coordinator.stop_requested(sweep_id)
    coordinator.update(sweep_id, status="stopped")
    coordinator.release(sweep_id)
    assert reader.load(sweep_id)["status"] == "stopped"
    assert not reader.coordinated(sweep_id)


# --- `sgdplus sweep`'s arguments --------------------------------------------------------------


def spec_of(command: str) -> SweepSpec:
    return sweep_spec_from_args(build_parser().parse_args(command.split()))


def test_the_issues_command_line():
    spec = spec_of(
        "sweep --dataset digits --learning-rate 0.01,0.03,0.1 --momentum 0,0.9 "
        "--nesterov false,true --seeds 3 --epochs 5"
    )
    assert spec.axes == {
        "learning_rate": (0.01, 0.03, 0.1),
        "momentum": (0.0, 0.9),
        "nesterov": (False, True),
    }
    assert spec.seeds == (0, 1, 2)
    assert spec.run_count == 36
    assert spec.base.dataset == "digits"
    assert spec.base.epochs == 5
    assert spec.base.name == ""
    assert spec.name == "digits: learning_rate x momentum x nesterov"


def test_an_option_given_once_is_fixed_and_the_others_are_trains():
    spec = spec_of(
        "sweep --dataset wine --learning-rate 1e-3:1:4log --momentum 0.9 --nesterov true "
        "--batch-size 1,32,full --decay 0.01 --seed 7 --seeds 2 --width 16 --depth 1 "
        "--convention torch --name my-sweep --epochs 3"
    )
    assert list(spec.axes) == ["learning_rate", "batch_size"]
    np.testing.assert_allclose(spec.axes["learning_rate"], np.geomspace(1e-3, 1, 4), rtol=1e-11)
    assert spec.axes["batch_size"] == (1, 32, None)
    optimizer = spec.base.optimizer
    assert (optimizer.momentum, optimizer.nesterov, optimizer.convention) == (0.9, True, "torch")
    assert (optimizer.schedule.name, optimizer.schedule.decay) == ("time_decay", 0.01)
    assert (spec.base.model.width, spec.base.model.depth) == (16, 1)
    assert spec.seeds == (7, 8)
    assert spec.name == "my-sweep"
    # the same settings as `sgdplus train` gives, but for the swept ones
    train_line = (
        "train --dataset wine --momentum 0.9 --nesterov --decay 0.01 --seed 7 --width 16 "
        "--depth 1 --convention torch --epochs 3"
    )
    train = build_parser().parse_args(train_line.split())
    from keras_sgdplus.lab.cli import config_from_args

    reference = config_from_args(train)
    assert config_with(reference, {"learning_rate": 0.01, "batch_size": 32}) == spec.base


def test_no_axis_sweeps_the_seeds_only():
    spec = spec_of("sweep --dataset iris --seeds 0,5,7")
    assert spec.axes == {}
    assert [c.seed for c in expand(spec)] == [0, 5, 7]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("--learning-rate 0.1,abc", "`learning_rate` must be a number"),
        ("--momentum 0,1.5", "`momentum` must be in"),
        ("--schedule constant,bogus", "`schedule` must be one of"),
        ("--seeds 0", "`seeds` must be a count"),
        ("--nesterov maybe", "`nesterov` takes true or false"),
        ("--batch-size 0,32", "`batch_size` must be"),
        ("--cluster tcp://127.0.0.1:1 --workers 2", "`--workers` is for a sweep on this machine"),
        ("--dataset nope", "`dataset` must be one of"),
    ],
)
def test_bad_sweep_arguments_exit_2_with_one_line(arguments, message, tmp_path, capsys):
    assert main(["sweep", "--runs-dir", str(tmp_path), *arguments.split()]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / ".sweeps").exists()  # no record for a sweep refused


def test_sweep_commands_refuse_unknown_sweeps(tmp_path, capsys):
    for command in ("sweep-stop", "sweep-delete"):
        assert main([command, "--runs-dir", str(tmp_path), "sweep-20260101-000000-abcdef"]) == 2
        assert "unknown sweep" in capsys.readouterr().err
        assert main([command, "--runs-dir", str(tmp_path), "../x"]) == 2
        assert "`sweep` must be a sweep id" in capsys.readouterr().err


def test_sweeps_lists_the_records(tmp_path, capsys):
    assert main(["sweeps", "--runs-dir", str(tmp_path)]) == 0
    assert "No sweeps" in capsys.readouterr().out
    spec = SweepSpec("listed", BASE, {"learning_rate": (0.01, 0.1)}, (0, 1))
    sweep_id = SweepStore(tmp_path).create(spec)
    assert main(["sweeps", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert sweep_id in out
    assert "0/4" in out
    assert "learning_rate (2)" in out
    assert main(["sweeps", "--runs-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == sweep_id


def test_every_axis_has_its_option():
    parser = build_parser()
    args = parser.parse_args(["sweep"])
    assert all(hasattr(args, axis) for axis in SWEEP_AXES)
