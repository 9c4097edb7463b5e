"""--distribute: TF_CONFIG and the chief, mirrored on a CPU-only machine, and two real workers over loopback
(one of which dies, and both resume)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from catdog.edge.contract import ModelContract
from catdog.edge.preprocess import prepare
from catdog.trainer.cli import app
from catdog.trainer.config import Distribute, FitConfig
from catdog.trainer.distribute import is_chief
from catdog.trainer.errors import DistributeError
from catdog.trainer.train import TrainingInterrupted, fit
from tests.trainer.conftest import TINY_SIZE, copy_photos

runner = CliRunner()
#: Longest each of the two-worker test's runs lets its processes live before it kills both and fails.
WORKERS_DEADLINE_S = 300
#: Starts of the two workers tried: a port found free may be taken by another process before its worker binds it.
PORT_ATTEMPTS = 5


def _tf_config(ports: list[int], index: int, task_type: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": task_type, "index": index}})


def test_the_chief_comes_from_tf_config(monkeypatch):
    assert is_chief(None) and is_chief(Distribute.mirrored)  # one process: it writes
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributeError, match="reads the cluster from TF_CONFIG, which is not set"):
        is_chief(Distribute.multi_worker)
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 0))
    assert is_chief(Distribute.multi_worker)
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert not is_chief(Distribute.multi_worker)
    cluster = {"chief": ["a:1"], "worker": ["b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert not is_chief(Distribute.multi_worker)  # with a chief task, worker 0 is not it
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 2))
    with pytest.raises(DistributeError, match="task index 2 is not one of cluster.worker's 2 address"):
        is_chief(Distribute.multi_worker)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(DistributeError, match="TF_CONFIG is not valid"):
        is_chief(Distribute.multi_worker)


def test_multi_worker_without_tf_config_is_one_line_before_any_photo_is_read(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "m.keras"
    result = runner.invoke(app, ["fit", str(tmp_path / "no-photos"), "--out", str(out), "--distribute", "multi-worker"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "TF_CONFIG" in result.stderr
    assert not any(tmp_path.iterdir())


def test_mirrored_on_a_cpu_only_machine_is_one_replica_and_says_so(data_dir, tmp_path):
    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    out = tmp_path / "m.keras"
    result = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(out), "--epochs", "1",
                                 "--image-size", str(TINY_SIZE), "--batch-size", "20", "--distribute", "mirrored"])
    assert result.exit_code == 0, result.output
    assert "--distribute mirrored: TensorFlow sees no GPU, so this trains as one replica on the CPU" in result.stderr
    training = ModelContract.load(out.with_suffix(".json")).training
    assert training["distribute"] == {"strategy": "mirrored", "replicas": 1, "workers": 1, "global_batch": 20}
    assert "--distribute mirrored" in training["command"] and training["config"]["distribute"] == "mirrored"


WORKER = """
import json, sys, threading
from pathlib import Path
import numpy as np
from catdog.trainer._tf import import_tensorflow
from catdog.trainer.config import Distribute, FitConfig, Keep
from catdog.trainer.train import TrainingInterrupted, fit

_, keras = import_tensorflow()
settings, hold = json.loads(sys.argv[1]), json.loads(sys.argv[3])

class Final(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == hold:  # stands still here, like a worker that died; the test kills it
            threading.Event().wait()

    def on_train_end(self, logs=None):
        np.savez(sys.argv[2], *self.model.get_weights())

config = FitConfig(**{**settings, **{k: Path(settings[k]) for k in ("data_dir", "val_dir", "out", "cache_dir")},
                      "image_hw": tuple(settings["image_hw"]), "keep": Keep(settings["keep"]),
                      "distribute": Distribute(settings["distribute"])})
result = fit(config, verbose=2, log=lambda m: print(m, file=sys.stderr, flush=True), callbacks=[Final()])
print(json.dumps({"wrote": result.wrote, "epochs_run": result.epochs_run, "resumed_from": result.resumed_from}))
"""


def _free_ports(count: int) -> list[int]:
    """Ports free just now. TensorFlow binds the ports TF_CONFIG names itself (no bound socket can be handed
    over), so another process may take one first: a worker then exits on it (_PortTaken) and is started again."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class _PortTaken(Exception):
    """A worker could not listen on its port: another process took it after _free_ports found it free."""


def _exited(proc: subprocess.Popen) -> AssertionError:
    """Why a worker ended early: _PortTaken (raised) when its port was taken, else the error to fail with."""
    stderr = proc.communicate()[1]
    if "Could not start gRPC server" in stderr:
        raise _PortTaken(stderr[-500:])
    return AssertionError(f"a worker exited (code {proc.returncode}) early: {stderr[-3000:]}")


def test_a_taken_port_is_told_apart_from_a_failing_worker(tmp_path):
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))  # TensorFlow listens on every address
    taken.listen()
    script = tmp_path / "server.py"
    script.write_text("import tensorflow as tf\ntf.distribute.MultiWorkerMirroredStrategy()\n")
    env = {**os.environ, "TF_CONFIG": _tf_config([taken.getsockname()[1], *_free_ports(1)], 0), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    proc.wait()
    with pytest.raises(_PortTaken):
        _exited(proc)
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit('no such photos')"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    failing.wait()
    assert "no such photos" in str(_exited(failing))


def _kill(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def _wait_for_checkpoint(state_path: Path, procs: list[subprocess.Popen], epoch: int) -> dict:
    """The chief's checkpoint state once it records `epoch` (polled; fails if a worker exits or the deadline passes)."""
    deadline = time.monotonic() + WORKERS_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            state = json.loads(state_path.read_text())
            if state["epoch"] >= epoch:
                return state
        except (OSError, ValueError):
            pass  # not written yet (each write is atomic: never half a file)
        for proc in procs:
            if proc.poll() is not None:
                raise _exited(proc)
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} at {state_path} within {WORKERS_DEADLINE_S} s")


def test_two_workers_train_replicas_only_the_chief_writes_and_both_resume_after_one_dies(data_dir, tmp_path):
    train = copy_photos(data_dir, tmp_path / "train", 12)
    val = copy_photos(data_dir, tmp_path / "val", 5, split="val")
    max(val.glob("dog/*.jpg")).unlink()  # 9: not a multiple of the workers, yet every one is measured
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    outs = [tmp_path / f"machine{index}" / "run" / "m.keras" for index in range(2)]

    def start(resume: bool, hold: int) -> list[subprocess.Popen]:
        """Both workers, on ports free just now; with hold, worker 1 stands still after that epoch."""
        ports, procs = _free_ports(2), []
        for index, out in enumerate(outs):
            # Two "machines": each its own --out folder and photo cache; the command is otherwise the same.
            machine = out.parent.parent
            settings = {"data_dir": str(train), "val_dir": str(val), "out": str(out), "epochs": 2,
                        "image_hw": [32, 32], "source_size": 32, "batch_size": 8, "keep": "last",
                        "distribute": "multi-worker", "cache_dir": str(machine / "cache"), "resume": resume}
            env = {**os.environ, "TF_CONFIG": _tf_config(ports, index), "CUDA_VISIBLE_DEVICES": ""}
            procs.append(subprocess.Popen(
                [sys.executable, str(script), json.dumps(settings), str(machine / "final-weights.npz"),
                 str(hold if index == 1 else 0)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            ))
        return procs

    # Worker 1 "dies" after epoch 1: it stands still (the chief then waits in epoch 2's first step) and,
    # once the chief has checkpointed epoch 1, is killed; then the chief is killed, as the README says.
    for attempt in range(PORT_ATTEMPTS):
        procs = start(resume=False, hold=1)
        try:
            checkpointed = _wait_for_checkpoint(outs[0].with_suffix(".ckpt") / "state.json", procs, epoch=1)
            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait()
            break
        except _PortTaken:
            assert attempt < PORT_ATTEMPTS - 1, "a port was taken at every start"
        finally:
            _kill(procs)
    assert checkpointed["epoch"] == 1 and len(checkpointed["history"]["loss"]) == 1
    assert not outs[0].exists() and not outs[1].parent.exists()  # only the chief's checkpoint so far

    # The same command with --resume on both: only the chief has the checkpoint, and sends it.
    for attempt in range(PORT_ATTEMPTS):
        procs, results = start(resume=True, hold=0), []
        try:
            deadline = time.monotonic() + WORKERS_DEADLINE_S
            for proc in procs:
                stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                if "Could not start gRPC server" in stderr:
                    raise _PortTaken(stderr[-500:])
                assert proc.returncode == 0, stderr[-3000:]
                results.append((json.loads(stdout.splitlines()[-1]), stderr))
            break
        except _PortTaken:
            assert attempt < PORT_ATTEMPTS - 1, "a port was taken at every start"
        finally:
            _kill(procs)
    (chief, chief_log), (other, other_log) = results
    assert chief["wrote"] and not other["wrote"]
    assert chief["resumed_from"] == other["resumed_from"] == 1 and chief["epochs_run"] == other["epochs_run"] == 2
    assert "2 replica(s) on 2 worker(s), global batch 8; worker 0 is the chief" in chief_log
    assert "worker 1 is not the chief: it writes nothing" in other_log
    assert "resuming from" in chief_log and "after epoch 1" in other_log
    # Epoch 1 is in the history once, as checkpointed, and epoch 2 follows it: the run continued, not restarted.
    history = json.loads(outs[0].with_suffix(".history.json").read_text())
    assert len(history["loss"]) == 2 and history["loss"][0] == checkpointed["history"]["loss"][0]
    # Only the chief wrote the model, contract and history; the other worker's --out folder stayed empty.
    assert outs[0].is_file() and outs[0].with_suffix(".json").is_file() and not outs[0].with_suffix(".ckpt").exists()
    assert not outs[1].parent.exists()
    contract = ModelContract.load(outs[0].with_suffix(".json"))
    assert contract.training["distribute"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2, "global_batch": 8}
    # The two workers' final models are replicas: the same predictions on the validation photos. They would
    # not be had worker 1 not received the chief's weights and optimizer state (its own were epoch 0's).
    import keras

    chief_model = keras.models.load_model(outs[0], compile=False)
    other_model = keras.models.clone_model(chief_model)
    other_weights = np.load(tmp_path / "machine1" / "final-weights.npz")
    other_model.set_weights([other_weights[f"arr_{i}"] for i in range(len(other_weights.files))])
    pixels = np.stack([prepare(p, (32, 32), crop=contract.crop) for p in sorted(val.glob("*/*.jpg"))]).astype(np.float32)
    ours, theirs = chief_model.predict(pixels, verbose=0), other_model.predict(pixels, verbose=0)
    assert np.abs(ours - theirs).max() < 1e-5
    # The last epoch's validation accuracy (keep=last: this model) was measured on all 9 photos.
    labels = np.array([p.parent.name == "dog" for p in sorted(val.glob("*/*.jpg"))])
    assert history["val_accuracy"][-1] == pytest.approx(np.mean((ours[:, 0] > 0.5) == labels))


def test_mixed_precision_trains_in_float16_resumes_and_saves_and_exports_a_float32_model(data_dir, tmp_path):
    import keras

    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    out = tmp_path / "m.keras"
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["computes"] = {layer.compute_dtype for layer in self.model.layers[2:-1]}  # past input and scaling
            seen["weights"] = {w.dtype for w in self.model.weights}
            seen["output"] = self.model.layers[-1].compute_dtype
            seen["optimizer"] = type(self.model.optimizer).__name__

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    config = FitConfig(data_dir=train, val_dir=val, out=out, epochs=2, image_hw=(32, 32), source_size=32,
                       batch_size=10, mixed_precision=True, cache_dir=tmp_path / "cache")
    with pytest.raises(TrainingInterrupted):
        fit(config, verbose=0, callbacks=[CtrlC()])
    # Resumed: the checkpoint's loss-scaled optimizer state loads into the mixed-precision model.
    result = fit(FitConfig(**{**config.__dict__, "resume": True}), verbose=0, callbacks=[Probe()])
    assert seen == {"computes": {"float16"}, "weights": {"float32"}, "output": "float32",
                    "optimizer": "LossScaleOptimizer"}
    assert result.resumed_from == 1 and result.epochs_run == 2
    # The saved (best) epoch's accuracy, as the history recorded it for both runs' epochs, on all 8 photos.
    history = json.loads(out.with_suffix(".history.json").read_text())
    assert len(history["val_accuracy"]) == 2 and result.val_accuracy == max(history["val_accuracy"])
    assert result.val_accuracy == history["val_accuracy"][result.saved_epoch - 1]
    assert result.val_accuracy * 8 == pytest.approx(round(result.val_accuracy * 8))  # a count of the 8 photos
    assert keras.mixed_precision.global_policy().name == "float32"  # fit leaves the policy as it found it
    # The saved model is float32 throughout: raw float32 pixels in, float32 probabilities out.
    model = keras.models.load_model(out, compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    pixels = np.stack([prepare(p, (32, 32), crop=ModelContract.load(out.with_suffix('.json')).crop) for p in sorted(val.glob("*/*.jpg"))]).astype(np.float32)
    probs = model.predict(pixels, verbose=0)
    assert probs.dtype == np.float32 and probs.shape == (8, 1) and np.all((probs >= 0) & (probs <= 1))
    training = ModelContract.load(out.with_suffix(".json")).training
    assert training["mixed_precision"] is True and training["config"]["mixed_precision"] is True
    assert "--mixed-precision" in training["command"]
    export = runner.invoke(app, ["export", str(out), "--quantize", "--calibration-count", "8", "--data-root", str(tmp_path)])
    assert export.exit_code == 0, export.output
    assert "parity on 8 validation photos" in export.stdout
