"""Nothing lost by a slip: --resume needs a checkpoint, and a model at --out is replaced only with --overwrite.

Both are refused before a photo is read (here the photo folder does not even exist) or TensorFlow
does any work. Resuming an interrupted run: tests/trainer/test_train.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from catdog.trainer.cli import app
from catdog.trainer.config import FitConfig
from catdog.trainer.errors import RunStateError
from catdog.trainer.run_state import check_start, checkpoint_dir_for, new_state, resume_state
from catdog.trainer.train import fit

runner = CliRunner()


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    out = tmp_path / "m.keras"
    with pytest.raises(RunStateError, match=f"--resume: no checkpoint at {checkpoint_dir_for(out)}.*without --resume"):
        fit(FitConfig(data_dir=tmp_path / "no-photos", out=out, resume=True))
    assert not out.exists() and not checkpoint_dir_for(out).exists()


def test_resume_after_a_completed_run_leaves_the_model_alone(tiny_model, data_dir):
    before = tiny_model.keras.read_bytes()
    result = runner.invoke(app, ["fit", str(data_dir / "train"), "--out", str(tiny_model.keras), "--resume"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --resume: no checkpoint") and "--overwrite" in result.stderr
    assert tiny_model.keras.read_bytes() == before


def test_an_existing_model_is_replaced_only_with_overwrite(tiny_model, tmp_path):
    before = tiny_model.keras.read_bytes()
    result = runner.invoke(app, ["fit", str(tmp_path / "no-photos"), "--out", str(tiny_model.keras)])
    assert result.exit_code == 2, result.output
    assert f"error: {tiny_model.keras} already exists; pass --overwrite" in result.stderr
    assert "--resume" not in result.stderr  # no interrupted run to point at
    assert tiny_model.keras.read_bytes() == before
    # With --overwrite the run goes on to the data checks (which fail here: no photos).
    result = runner.invoke(app, ["fit", str(tmp_path / "no-photos"), "--out", str(tiny_model.keras), "--overwrite"])
    assert result.exit_code == 2 and "photo folder not found" in result.stderr


def test_a_killed_runs_checkpoint_is_kept_unless_overwrite(tmp_path):
    """Regression (issue 30): a fit killed (SIGKILL: no model at --out) and rerun without --resume deleted its
    checkpoint after one warning. Now it is refused like a model in the way, and the checkpoint stays."""
    out = tmp_path / "m.keras"
    ckpt = checkpoint_dir_for(out)
    ckpt.mkdir()
    state = new_state(FitConfig(data_dir=tmp_path, out=out), ("cat", "dog"))
    (ckpt / "state.json").write_text(json.dumps({**state, "epoch": 3, "last_model": "epoch-3.keras"}))
    (ckpt / "epoch-3.keras").write_bytes(b"three epochs of work")
    before = sorted((p.name, p.read_bytes()) for p in ckpt.iterdir())
    result = runner.invoke(app, ["fit", str(tmp_path / "no-photos"), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: an interrupted run left a checkpoint at {ckpt}; "
                             "pass --resume to continue it or --overwrite to train afresh\n")
    assert sorted((p.name, p.read_bytes()) for p in ckpt.iterdir()) == before
    # With --overwrite the run goes on (to the data checks, which fail here: no photos), warning what it replaces.
    result = runner.invoke(app, ["fit", str(tmp_path / "no-photos"), "--out", str(out), "--overwrite"])
    assert result.exit_code == 2 and "photo folder not found" in result.stderr
    assert f"warning: replacing the checkpoint of an interrupted run at {ckpt}" in result.stderr


def test_a_checkpoint_without_a_finished_epoch_is_replaced_with_a_warning(tmp_path):
    out = tmp_path / "m.keras"
    checkpoint_dir_for(out).mkdir()  # killed before its first epoch ended: no state.json, nothing to resume
    logged = []
    check_start(FitConfig(data_dir=tmp_path, out=out), logged.append)
    assert logged == [f"warning: replacing the checkpoint of an interrupted run at {checkpoint_dir_for(out)} "
                      "(pass --resume to continue it)"]


def test_resume_refuses_other_settings_labels_and_an_unreadable_state(tmp_path):
    config = FitConfig(data_dir=tmp_path, out=tmp_path / "m.keras", epochs=5)
    ckpt = checkpoint_dir_for(config.out)
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps(new_state(config, ("cat", "dog"))))
    assert resume_state(config, ("cat", "dog"))["epoch"] == 0
    with pytest.raises(RunStateError, match=r"other settings \(epochs: 5 -> 6\)"):
        resume_state(FitConfig(**{**config.__dict__, "epochs": 6}), ("cat", "dog"))
    with pytest.raises(RunStateError, match=r"other settings \(the labels\)"):
        resume_state(config, ("cat", "fox"))
    (ckpt / "state.json").write_text("{")
    with pytest.raises(RunStateError, match="cannot read the checkpoint state"):
        resume_state(config, ("cat", "dog"))


def test_a_checkpoint_killed_between_its_writes_still_agrees_with_itself(tmp_path, monkeypatch):
    import catdog.trainer.run_state as run_state
    from catdog.trainer._tf import import_tensorflow

    _, keras = import_tensorflow()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    ckpt = tmp_path / "m.ckpt"
    ckpt.mkdir()
    state = new_state(FitConfig(data_dir=tmp_path, out=tmp_path / "m.keras"), ("cat", "dog"))
    callback = run_state.run_state_callback(keras, ckpt, state, patience=None)
    callback.set_model(model)

    def epoch(index, accuracy):
        model.set_weights([np.full_like(w, index) for w in model.get_weights()])
        callback.on_epoch_end(index, {"loss": 1.0, "val_accuracy": accuracy})

    epoch(0, 0.9)
    killed = RuntimeError("killed")  # the process dies after epoch 2's model is written, before its state

    def dies(path, data):
        raise killed

    with monkeypatch.context() as m:
        m.setattr(run_state, "atomic_write_bytes", dies)
        with pytest.raises(RuntimeError):
            epoch(1, 0.95)
    saved = json.loads((ckpt / "state.json").read_text())
    assert saved["epoch"] == state["epoch"] == 1 and saved["last_model"] == saved["best_model"] == "epoch-1.keras"
    last = keras.models.load_model(run_state.kept_model_path(ckpt, saved, "last"))
    assert all(np.all(w == 0) for w in last.get_weights())  # epoch 1's weights, as its state says
    epoch(1, 0.5)  # rerun (as --resume does): a worse epoch keeps epoch 1 as the best
    assert sorted(p.name for p in ckpt.glob("epoch-*")) == ["epoch-1.keras", "epoch-2.keras"]
    epoch(2, 0.6)
    assert sorted(p.name for p in ckpt.glob("epoch-*")) == ["epoch-1.keras", "epoch-3.keras"]
