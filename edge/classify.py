"""Classify photos with a .tflite model and its contract: Classifier, Prediction, Failure."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .contract import ModelContract, check_threshold, contract_for_model
from .errors import CatDogError
from .preprocess import ImageSource, prepare
from .models import is_bundled, resolve_model
from .runtime import Runtime, RuntimeName, find_runtime, load_interpreter, read_model

if TYPE_CHECKING:
    from concurrent.futures import Future

#: Photos decoded ahead of inference per worker thread: enough that no thread waits for the
#: next job, few enough (a few MB) that memory stays flat on any folder size.
READ_AHEAD = 8



@dataclass(frozen=True)
class Prediction:
    """The answer for one photo."""

    path: str | None
    """The photo's path, None when classifying an image object."""
    label: str
    """The chosen label."""
    index: int
    """Index of the chosen label in the contract's labels."""
    confidence: float
    """Probability of the chosen label, 0..1."""
    scores: dict[str, float]
    """Probability of every label, in label order."""
    ms: float
    """Milliseconds spent on this photo: decoding, preprocessing and inference."""

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most likely (label, score) pairs, best first."""
        return sorted(self.scores.items(), key=lambda item: -item[1])[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"path", "label", "confidence", "scores", "ms"}."""
        return {
            "path": self.path,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "ms": round(self.ms, 3),
        }


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

    Inference runs on the calling thread; classify_many decodes photos on worker threads meanwhile.
    One instance must not be used from several threads at once.
    """

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
    ):
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
        self.output_detail = interpreter.get_output_details()[0]

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
        contract.check_tensors(interpreter.get_input_details()[0], interpreter.get_output_details()[0], str(model_path))
        return cls(interpreter, contract, rt, model_path, threshold=threshold, draft=draft, threads=threads, xnnpack=xnnpack,
                   flip=flip)

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
        scores = self._invoke(pixels)
        if self.flip:
            scores = (scores + self._invoke(np.ascontiguousarray(pixels[:, ::-1]))) / np.float32(2.0)
        return scores

    def _invoke(self, pixels: np.ndarray) -> np.ndarray:
        c = self.contract
        if c.input_quantization is not None:
            batch = c.input_quantization.quantize(pixels[np.newaxis], c.input_dtype)
        else:
            batch = pixels[np.newaxis].astype(c.input_dtype)
        self.interpreter.set_tensor(self.input_detail["index"], batch)
        self.interpreter.invoke()
        return c.scores(self.interpreter.get_tensor(self.output_detail["index"]))

    def classify(self, source: ImageSource) -> Prediction:
        """Classify one photo (path, PIL image or RGB uint8 array).

        Raises:
            ImageError: the photo cannot be read.
        """
        pixels, decode_ms = self._timed_preprocess(source)
        path = str(source) if isinstance(source, (str, Path)) else None
        return self._predict_timed(path, pixels, decode_ms)

    def classify_many(self, paths: Iterable[str | Path], workers: int = 1) -> Iterator[Prediction | Failure]:
        """Classify photos in order; a photo that fails yields a Failure and the rest go on.

        Args:
            paths: photo files.
            workers: threads decoding photos ahead of inference (Pillow releases the GIL while it
                decodes and resizes); 1 decodes on the calling thread.
        """
        iterator = iter(paths)
        first = list(itertools.islice(iterator, 2))
        if workers <= 1 or len(first) < 2:  # one photo: no threads to start (and none to import)
            for path in itertools.chain(first, iterator):
                try:
                    yield self.classify(path)
                except CatDogError as exc:
                    yield Failure(path=str(path), error=str(exc))
            return
        from concurrent.futures import ThreadPoolExecutor

        iterator = itertools.chain(first, iterator)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="catdog-decode") as pool:
            pending: deque[tuple[str, Future]] = deque()
            exhausted = False
            while True:
                while not exhausted and len(pending) < READ_AHEAD * workers:  # bounded read-ahead
                    try:
                        path = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append((str(path), pool.submit(self._timed_preprocess, path)))
                if not pending:
                    return
                path, future = pending.popleft()
                try:
                    pixels, decode_ms = future.result()
                except CatDogError as exc:
                    yield Failure(path=path, error=str(exc))
                    continue
                yield self._predict_timed(path, pixels, decode_ms)

    def _timed_preprocess(self, source: ImageSource) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        pixels = self.preprocess(source)
        return pixels, (time.perf_counter() - start) * 1000.0

    def _predict_timed(self, path: str | None, pixels: np.ndarray, decode_ms: float) -> Prediction:
        start = time.perf_counter()
        scores = self.predict(pixels)
        ms = decode_ms + (time.perf_counter() - start) * 1000.0
        index = self.contract.decide(scores, self.threshold)
        labels = self.contract.labels
        return Prediction(
            path=path,
            label=labels[index],
            index=index,
            confidence=float(scores[index]),
            scores={label: float(s) for label, s in zip(labels, scores)},
            ms=ms,
        )
