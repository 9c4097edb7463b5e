"""Where fit's training steps run: the tf.distribute strategy (--distribute), which worker is the chief,
each worker's shard of the photos, float16 compute (--mixed-precision), and the chief's values sent to
every worker (--resume).

multi-worker reads the standard TF_CONFIG. Keras 3 trains under MultiWorkerMirroredStrategy only with
the reduce fix in _MultiWorker (keras-team/keras#20585).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from ._tf import import_tensorflow
from .config import Distribute
from .errors import DistributeError


@dataclass(frozen=True)
class Shard:
    """The part of every epoch's photos one input pipeline reads: every count-th photo from index."""

    count: int = 1
    """Input pipelines (one per worker)."""
    index: int = 0
    """This pipeline's (0 on the chief)."""


@dataclass(frozen=True)
class Placement:
    """The strategy fit trains under, and this process's place in it."""

    kind: Distribute
    """The strategy used (auto resolved)."""
    strategy: Any
    """The tf.distribute.Strategy (the default strategy for none)."""
    replicas: int
    """Replicas in sync over all workers (the global batch is split among them)."""
    workers: int
    """Processes training together (1 but for multi-worker)."""
    worker_index: int
    """This process's index among them."""
    is_chief: bool
    """Whether this process writes the model, contract, history and checkpoints."""

    def record(self, global_batch: int) -> dict[str, Any]:
        """What the contract's recipe records about it."""
        return {"strategy": self.kind.value, "replicas": self.replicas, "workers": self.workers,
                "global_batch": global_batch}


def place(kind: Distribute | None, global_batch: int, log: Callable[[str], None] = lambda _: None) -> Placement:
    """Create the strategy: call before TensorFlow runs anything else (multi-worker configures the runtime).

    Args:
        kind: the strategy; None: mirrored when TensorFlow sees more than one GPU, else none.
        global_batch: photos per step over all replicas (must split evenly among them).
        log: says what runs where (and that mirrored without a GPU is one replica).

    Raises:
        DistributeError: TF_CONFIG missing or malformed for multi-worker, or a batch the replicas cannot split.
    """
    tf, _ = import_tensorflow()
    gpus = len(tf.config.list_physical_devices("GPU"))
    if kind is None:
        kind = Distribute.mirrored if gpus > 1 else Distribute.none
    if kind is Distribute.none:
        placement = Placement(kind, tf.distribute.get_strategy(), 1, 1, 0, True)
    elif kind is Distribute.mirrored:
        strategy = tf.distribute.MirroredStrategy()
        placement = Placement(kind, strategy, strategy.num_replicas_in_sync, 1, 0, True)
        if not gpus:
            log("--distribute mirrored: TensorFlow sees no GPU, so this trains as one replica on the CPU")
    else:
        task_type, task_index, has_chief, workers = _tf_config()
        strategy = _multi_worker_class(tf)()
        index = task_index + (1 if has_chief and task_type == "worker" else 0)
        placement = Placement(kind, strategy, strategy.num_replicas_in_sync, workers, index, is_chief(kind))
    if global_batch % placement.replicas:
        raise DistributeError(
            f"--batch-size {global_batch} is the global batch: it must split evenly among the {placement.replicas} "
            "replicas; pass a multiple of them"
        )
    if kind is not Distribute.none:
        role = "the chief, which writes every file" if placement.is_chief else "not the chief: it writes nothing"
        log(f"training with {kind.value}: {placement.replicas} replica(s) on {placement.workers} worker(s), "
            f"global batch {global_batch}; worker {placement.worker_index} is {role}")
    return placement


def is_chief(kind: Distribute | None) -> bool:
    """Whether this process writes fit's files, known before TensorFlow starts: TF_CONFIG's "chief" task, else
    its worker 0, for multi-worker; always for the others.

    Raises:
        DistributeError: multi-worker without a valid TF_CONFIG.
    """
    if kind is not Distribute.multi_worker:
        return True
    task_type, task_index, has_chief, _ = _tf_config()
    return task_type == "chief" or (not has_chief and task_index == 0)


def _tf_config() -> tuple[str, int, bool, int]:
    """(task type, task index, whether the cluster has a chief task, processes) from TF_CONFIG."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributeError(
            "--distribute multi-worker reads the cluster from TF_CONFIG, which is not set; "
            "set it on every machine as the README's 'Training on more than one machine' shows"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, task_index = task["type"], int(task["index"])
        workers = list(cluster.get("worker", [])) + list(cluster.get("chief", []))
    except (ValueError, KeyError, TypeError) as exc:
        raise DistributeError(f"TF_CONFIG is not valid ({exc!r}); it needs cluster.worker (host:port list) and task.type/index") from None
    if task_type not in ("worker", "chief") or not workers:
        raise DistributeError(f"TF_CONFIG: task type {task_type!r} is not a worker or chief; fit runs on workers only")
    if not 0 <= task_index < len(cluster.get(task_type, [])):
        raise DistributeError(f"TF_CONFIG: task index {task_index} is not one of cluster.{task_type}'s "
                              f"{len(cluster.get(task_type, []))} address(es); number them from 0")
    return task_type, task_index, "chief" in cluster, len(workers)


def _multi_worker_class(tf: Any) -> type:
    class _MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose reduce takes what Keras 3's fit gives it over several workers
        (keras-team/keras#20585): a nest (its first data batch), and scalars with axis=0 (its logs)."""

        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            if isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None  # the same value on every replica (synchronised metrics): nothing to reduce along
            return super().reduce(reduce_op, value, axis)

    return _MultiWorker


def distributed(placement: Placement, make: Callable[[Shard, int], Any], global_batch: int) -> Any:
    """The batches of make(shard, batch_size) for this placement: as they are for none; else one tf.data
    pipeline per worker, each reading its own shard at the per-replica batch size, handed to its replicas."""
    if placement.kind is Distribute.none:
        return make(Shard(), global_batch)

    def per_worker(context: Any) -> Any:
        shard = Shard(context.num_input_pipelines, context.input_pipeline_id)
        return make(shard, context.get_per_replica_batch_size(global_batch))

    return placement.strategy.distribute_datasets_from_function(per_worker)


@contextmanager
def precision(mixed: bool) -> Iterator[None]:
    """Layers built inside compute in float16 with float32 weights when mixed, but for the output layer
    (trainer.model: float32), and compile wraps the optimizer in Keras's LossScaleOptimizer. The policy
    before is back afterwards, so the model fit saves (rebuilt outside) is float32 throughout."""
    _, keras = import_tensorflow()
    if not mixed:
        yield
        return
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def from_chief(placement: Placement, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The chief's arrays on every worker (others pass arrays of the same shapes and dtypes; their values are
    ignored): a sum over all replicas where only the first replica, on the chief, contributes."""
    if placement.workers == 1:
        return arrays
    tf, _ = import_tensorflow()
    strategy = placement.strategy

    @tf.function
    def step(*values: Any) -> Any:
        context = tf.distribute.get_replica_context()
        keep = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float64)
        return context.all_reduce("SUM", [tf.cast(v, tf.float64) * keep for v in values])

    summed = strategy.run(step, args=tuple(tf.constant(a) for a in arrays))
    return [np.asarray(strategy.experimental_local_results(s)[0]).astype(a.dtype) for s, a in zip(summed, arrays)]


def text_from_chief(placement: Placement, text: str) -> str:
    """The chief's text on every worker (what others pass is ignored)."""
    data = np.frombuffer(text.encode(), np.uint8) if placement.is_chief else np.zeros(0, np.uint8)
    (length,) = from_chief(placement, [np.array([len(data)], np.int64)])
    padded = np.zeros(int(length[0]), np.uint8)
    padded[: len(data)] = data[: len(padded)]
    (received,) = from_chief(placement, [padded])
    return received.tobytes().decode()
