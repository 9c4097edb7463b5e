"""Classify photos with a .tflite model and its contract: Classifier, Prediction, Failure."""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .contract import ModelContract, check_threshold, contract_for_model
from .errors import CatDogError, ModelError
from .preprocess import ImageSource, prepare
from .models import is_bundled, resolve_model
from .pipeline import Plan, plan_pipeline, usable_cores
from .runtime import Runtime, RuntimeName, find_runtime, load_interpreter, read_model
from .signature import output_names

if TYPE_CHECKING:
    import queue
    from concurrent.futures import Future

#: Photos queued ahead per worker thread: enough that no thread waits for the next job, few enough
#: that memory stays flat on any folder size.
READ_AHEAD = 8
#: Photos classified and timed on the calling thread before classify_many chooses its threads: the
#: fastest of their decode and model times is the cost it balances (the first pays the warm-ups).
PROBE = 3


@dataclass(frozen=True)
class Prediction:
    """The answer for one photo."""

    path: str | None
    """The photo's path, None when classifying an image object."""
    label: str
    """The chosen answer: one of the labels, or the presence label ("none") when none of them is there."""
    index: int
    """Index of the answer in the contract's answers (the labels, then "none")."""
    confidence: float
    """Probability of the chosen label, 0..1; for "none", 1 - the soft presence probability."""
    scores: dict[str, float]
    """Probability of every label, in label order (as if one of them were there)."""
    ms: float
    """Milliseconds spent on this photo: decoding, preprocessing and inference."""
    present: bool | None = None
    """Whether one of the labels is in the photo; None when the model has no presence score or it is off."""
    presence: float | None = None
    """The presence score (edge.presence), None when not computed."""

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most likely (label, score) pairs, best first."""
        return sorted(self.scores.items(), key=lambda item: -item[1])[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"path", "label", "confidence", "scores", "ms"}, and "present" and "presence"
        when the model has a presence score in use."""
        data = {
            "path": self.path,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "ms": round(self.ms, 3),
        }
        if self.present is not None:
            data.update(present=self.present, presence=None if self.presence is None else round(self.presence, 6))
        return data


@dataclass(frozen=True)
class Outputs:
    """What one invoke (or a flip-averaged pair) gave for a photo."""

    scores: np.ndarray
    """float32 (n_labels,) probabilities in label order."""
    presence: float | None
    """The presence score, None when the model has none or it is off."""


@dataclass(frozen=True)
class Failure:
    """A photo that could not be classified, and why."""

    path: str
    """The photo's path."""
    error: str
    """One line saying what is wrong and what to do."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"path", "error"}."""
        return {"path": self.path, "error": self.error}


class Classifier:
    """A loaded .tflite model with its contract.

    classify and predict run on the calling thread; classify_many spreads photos over worker threads
    and, when the model's cost calls for it, over copies of the interpreter. One instance must not be
    used from several threads at once.
    """

    last_plan: Plan | None = None
    """The threads and interpreters of the latest classify_many run (None before the first)."""

    def __init__(
        self,
        interpreter: Any,
        contract: ModelContract,
        runtime: Runtime,
        model_path: Path,
        threshold: float | None = None,
        draft: bool = True,
        threads: int | None = None,
        xnnpack: bool = True,
        flip: bool = False,
        named_outputs: dict[str, int] | None = None,
        presence: bool = True,
        presence_threshold: float | None = None,
    ):
        """See load(). named_outputs: the signature's output names -> tensor index (edge.signature),
        needed when the contract names its outputs."""
        self.interpreter = interpreter
        self.contract = contract
        self.runtime = runtime
        self.model_path = Path(model_path)
        self.threshold = contract.threshold if threshold is None else check_threshold(threshold)
        self.draft = draft
        self.threads = threads
        self.xnnpack = xnnpack
        self.flip = flip
        self.input_detail = interpreter.get_input_details()[0]
        outputs = interpreter.get_output_details()
        self.output_detail = _output(outputs, named_outputs, contract.output_name, self.model_path)
        self.presence = contract.presence if presence else None
        self.presence_detail = None
        if self.presence is not None:
            self.presence_detail = _output(outputs, named_outputs, self.presence.output, self.model_path)
        self.features_detail = None
        if contract.features is not None:
            self.features_detail = _output(outputs, named_outputs, contract.features.output, self.model_path)
        if presence_threshold is not None:
            if contract.presence is None:
                raise ModelError(f"{self.model_path}: the model has no presence score, so --presence-threshold does not apply")
            if not math.isfinite(presence_threshold):
                raise ModelError(f"--presence-threshold must be a finite number, got {presence_threshold}")
        self.presence_threshold = None if self.presence is None else (
            self.presence.threshold if presence_threshold is None else float(presence_threshold))

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        runtime: RuntimeName | str = RuntimeName.auto,
        threads: int | None = None,
        threshold: float | None = None,
        draft: bool = True,
        xnnpack: bool = True,
        flip: bool = False,
        presence: bool = True,
        presence_threshold: float | None = None,
    ) -> "Classifier":
        """Load a .tflite model and the contract beside it (models/x.tflite -> models/x.json).

        Args:
            path: the .tflite file, or a bundled model's name ("compact"); None for $CATDOG_MODEL or
                the default bundled model (see catdog.edge.models).
            runtime: "auto" (ai-edge-litert, else tflite-runtime), "litert" or "tflite-runtime".
            threads: interpreter threads; None for the runtime's default.
            threshold: binary models: probability of labels[1] needed to choose it (default: contract's).
            draft: decode JPEG files at reduced scale when they are much larger than the model input
                (see edge.preprocess.open_image; label agreement with full decoding is measured by
                benchmarks/edge_throughput.py).
            xnnpack: use the runtime's XNNPACK delegate (see edge.runtime.load_interpreter).
            flip: test-time augmentation: average the scores of the photo and its mirror image (two
                invokes per photo; benchmarks/flip_tta.py measures what it buys).
            presence: use the model's presence score, if it has one, to answer "none" (False: always
                one of the labels, as models without the score do).
            presence_threshold: the presence score needed to answer one of the labels (default: the
                contract's; see edge.presence).

        Raises:
            ModelError: model or contract missing, invalid, or not matching each other.
            RuntimeMissingError: no TFLite runtime is installed.
        """
        model_path = resolve_model(path)
        rt = find_runtime(runtime)
        if is_bundled(model_path):
            # The shipped models install like code (tests/edge/test_bundled.py checks them): no structural
            # check, and the runtime maps the file itself; reading its megabytes into memory first costs
            # ~900 page faults, a few ms of every start.
            content = None
            contract = contract_for_model(model_path)
        else:
            from .modelcheck import check_model  # only here: the bundled models' start skips importing it

            content = read_model(model_path)  # read once: the bytes checked are the bytes loaded
            # The contract first: reading it walks the file's flatbuffer with bounds checks, so a damaged
            # file is refused here, before the runtime sees it (tflite-runtime 2.14 segfaults on some).
            contract = contract_for_model(model_path, content)
            check_model(content, contract, str(model_path))  # every offset and index the runtime follows
            from .modelprobe import check_survives  # what the check misses can still crash the runtime: try it once

            check_survives(content, rt, xnnpack, str(model_path))  # in a child; remembered by content hash
        interpreter = load_interpreter(model_path, rt, threads, xnnpack=xnnpack, content=content)
        named = None
        if contract.output_name is not None or contract.presence is not None or contract.features is not None:
            named = output_names(model_path if content is None else content, str(model_path))
        classifier = cls(interpreter, contract, rt, model_path, threshold=threshold, draft=draft, threads=threads,
                         xnnpack=xnnpack, flip=flip, named_outputs=named, presence=presence,
                         presence_threshold=presence_threshold)
        contract.check_tensors(classifier.input_detail, classifier.output_detail, str(model_path))
        if classifier.presence_detail is not None:
            contract.check_presence_tensor(classifier.presence_detail, str(model_path))
        if classifier.features_detail is not None:
            contract.check_features_tensor(classifier.features_detail, str(model_path))
        return classifier

    def preprocess(self, source: ImageSource) -> np.ndarray:
        """Photo -> uint8 pixels (height, width, channels) exactly as this model wants them."""
        c = self.contract
        return prepare(source, c.input_hw, c.color, c.resize, c.crop, draft=self.draft)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Run the model on prepared pixels (and, with flip, on their mirror image, averaging the two).

        Args:
            pixels: uint8 array (height, width, channels) from preprocess().

        Returns:
            float32 array (n_labels,) of probabilities.
        """
        return self.outputs(pixels).scores

    def outputs(self, pixels: np.ndarray) -> Outputs:
        """Run the model on prepared pixels: the label probabilities and the presence score (with flip,
        each averaged over the photo and its mirror image).

        Args:
            pixels: uint8 array (height, width, channels) from preprocess().
        """
        out = self._invoke(pixels)
        if not self.flip:
            return out
        mirror = self._invoke(np.ascontiguousarray(pixels[:, ::-1]))
        presence = None if out.presence is None else (out.presence + mirror.presence) / 2.0
        return Outputs((out.scores + mirror.scores) / np.float32(2.0), presence)

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """The model's pooled backbone features of prepared pixels (no flip): float32 (size,), dequantized.

        Raises:
            ModelError: the model exposes no features (its contract records none; re-export it).
        """
        if self.features_detail is None:
            raise ModelError(f"{self.model_path}: the model exposes no backbone features; re-export a pretrained "
                             "model (catdog-train fit --arch efficientnet-lite0, then export) to learn from it")
        self._invoke(pixels)
        return self.contract.features.values(self.interpreter.get_tensor(self.features_detail["index"]))

    def _invoke(self, pixels: np.ndarray) -> Outputs:
        c = self.contract
        if c.input_quantization is not None:
            batch = c.input_quantization.quantize(pixels[np.newaxis], c.input_dtype)
        else:
            batch = pixels[np.newaxis].astype(c.input_dtype)
        self.interpreter.set_tensor(self.input_detail["index"], batch)
        self.interpreter.invoke()
        scores = c.scores(self.interpreter.get_tensor(self.output_detail["index"]))
        presence = None
        if self.presence_detail is not None:
            presence = self.presence.score(self.interpreter.get_tensor(self.presence_detail["index"]))
        return Outputs(scores, presence)

    @property
    def answers(self) -> tuple[str, ...]:
        """Every answer this classifier gives: the labels, then the presence label while the score is in use."""
        return self.contract.labels if self.presence is None else self.contract.answers

    def answer_probabilities(self, prediction: Prediction) -> list[float]:
        """The probability of every answer (in the order of answers) for a prediction: each label's score,
        then for "none" 1 - the soft presence probability (edge.presence)."""
        values = [prediction.scores[label] for label in self.contract.labels]
        if self.presence is not None and prediction.presence is not None:
            values.append(1.0 - self.presence.probability(prediction.presence, self.presence_threshold))
        return values

    def answer(self, path: str | None, outputs: Outputs, ms: float) -> Prediction:
        """The Prediction for a photo's outputs: one of the labels by the contract's rule, or the
        presence label when the presence score is under its threshold."""
        scores = outputs.scores
        index = self.contract.decide(scores, self.threshold)
        labels = self.contract.labels
        confidence = float(scores[index])
        present = None
        if outputs.presence is not None:
            present = outputs.presence >= self.presence_threshold
            if not present:
                index = len(labels)
                confidence = 1.0 - self.presence.probability(outputs.presence, self.presence_threshold)
        return Prediction(
            path=path,
            label=self.contract.answers[index],
            index=index,
            confidence=confidence,
            scores={label: float(s) for label, s in zip(labels, scores)},
            ms=ms,
            present=present,
            presence=outputs.presence,
        )

    def classify(self, source: ImageSource) -> Prediction:
        """Classify one photo (path, PIL image or RGB uint8 array).

        Raises:
            ImageError: the photo cannot be read.
        """
        pixels, decode_ms = self._timed_preprocess(source)
        path = str(source) if isinstance(source, (str, Path)) else None
        return self._predict_timed(path, pixels, decode_ms)

    def classify_many(
        self, paths: Iterable[str | Path], workers: int | None = None, interpreters: int | None = None,
    ) -> Iterator[Prediction | Failure]:
        """Classify photo files, yielding their results in order; a photo that fails yields a Failure and the rest go on.

        The first photos run on the calling thread and are timed. From their decode and model times and
        the usable cores, catdog.edge.pipeline.plan_pipeline then chooses how many worker threads decode
        and classify the rest, and how many interpreters (this one and copies of it) they share; the plan
        is kept in last_plan. Explicit workers and interpreters are used as given.

        Args:
            paths: photo files.
            workers: threads that decode photos and run the model on them (Pillow and the interpreter
                release the GIL); 1 runs everything on the calling thread; None chooses.
            interpreters: how many invokes may run at once, each on its own interpreter (up to workers;
                copies are loaded like this one); None chooses from the measured cost.
        """
        iterator = iter(paths)
        self.last_plan = Plan(workers=1, interpreters=1)
        if workers == 1:
            for path in iterator:
                yield self._classify_path(path)[0]
            return
        costs: list[tuple[float, float]] = []  # (decode ms, model ms) of each photo classified so far
        for path in iterator:  # the probe: also spares a lone photo any thread start
            result, decode_ms = self._classify_path(path)
            if isinstance(result, Prediction):
                costs.append((decode_ms, result.ms - decode_ms))
            yield result
            if len(costs) >= (PROBE if interpreters is None else 1):
                break
        else:
            return  # every photo is done
        # The fastest of each: the first photo pays the runtime's and Pillow's warm-ups.
        plan = plan_pipeline(min(d for d, _ in costs), min(m for _, m in costs), usable_cores(), self.threads or 1,
                             workers, interpreters)
        self.last_plan = plan
        if plan.workers == 1:
            for path in iterator:
                yield self._classify_path(path)[0]
        else:
            yield from self._pipelined(iterator, plan)

    def _pipelined(self, iterator: Iterator[str | Path], plan: Plan) -> Iterator[Prediction | Failure]:
        """Classify the rest of the photos on plan.workers threads sharing plan.interpreters interpreters."""
        first = next(iterator, None)
        if first is None:
            return  # the probe took the last photo: no copies to load, no threads to start
        import queue
        from concurrent.futures import ThreadPoolExecutor

        idle: queue.SimpleQueue[Classifier] = queue.SimpleQueue()  # each interpreter used by one thread at a time
        for classifier in [self, *self._copies(plan.interpreters - 1)]:
            idle.put(classifier)
        with ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="catdog-classify") as pool:
            pending: deque[Future] = deque()
            for path in itertools.chain([first], iterator):
                pending.append(pool.submit(self._classify_path, path, idle))
                if len(pending) >= READ_AHEAD * plan.workers:  # bounded read-ahead
                    yield pending.popleft().result()[0]
            while pending:
                yield pending.popleft().result()[0]

    def _copies(self, n: int) -> list["Classifier"]:
        """Up to n more Classifiers of this model and options, each with its own interpreter.

        Each is loaded as this one was (so with the same checks of a file of one's own); fewer come back
        when the file cannot be loaded again or no longer holds the same model, and the run goes on with
        the interpreters there are. Warnings were given when this one was loaded, so they are not repeated.
        """
        copies: list[Classifier] = []
        for _ in range(n):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    copy = Classifier.load(self.model_path, runtime=self.runtime.name, threads=self.threads,
                                           threshold=self.threshold, draft=self.draft, xnnpack=self.xnnpack,
                                           flip=self.flip, presence=self.presence is not None,
                                           presence_threshold=self.presence_threshold)
            except CatDogError:
                break
            if copy.contract != self.contract:
                break
            copies.append(copy)
        return copies

    def _classify_path(
        self, path: str | Path, idle: "queue.SimpleQueue[Classifier] | None" = None
    ) -> tuple[Prediction | Failure, float]:
        """Classify one photo file: (result, decode ms). Decodes on this thread, then runs the model on
        this classifier or, given idle, on whichever classifier in it is free."""
        try:
            pixels, decode_ms = self._timed_preprocess(path)
        except CatDogError as exc:
            return Failure(path=str(path), error=str(exc)), 0.0
        classifier = self if idle is None else idle.get()
        try:
            return classifier._predict_timed(str(path), pixels, decode_ms), decode_ms
        finally:
            if idle is not None:
                idle.put(classifier)

    def _timed_preprocess(self, source: ImageSource) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        pixels = self.preprocess(source)
        return pixels, (time.perf_counter() - start) * 1000.0

    def _predict_timed(self, path: str | None, pixels: np.ndarray, decode_ms: float) -> Prediction:
        start = time.perf_counter()
        outputs = self.outputs(pixels)
        return self.answer(path, outputs, decode_ms + (time.perf_counter() - start) * 1000.0)


def _output(details: list[dict], named: dict[str, int] | None, name: str | None, model_path: Path) -> dict:
    """The interpreter's output detail that the signature calls name; the first output for name None
    (contracts from before models had named outputs)."""
    if name is None:
        return details[0]
    index = (named or {}).get(name)
    for detail in details:
        if detail["index"] == index:
            return detail
    raise ModelError(f"{model_path}: the contract names the output {name!r}, which the model does not have; re-export the model")
