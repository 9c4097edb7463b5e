"""A linear classification head on fixed features: L2-regularised logistic regression, its strength
chosen by cross-validation on the training photos (never on the validation photos).

Transfer learning trains only this layer on the frozen backbone's pooled features, computed once:
a convex problem, so plain numpy solves it exactly enough in well under a second, deterministically.
The result is the weights of the model's last Dense layer (sigmoid for 2 classes, softmax for more).
The one implementation: catdog-train fit (trainer.transfer) and catdog-edge learn (edge.learn) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: L2 strengths tried by cross-validation (on the mean loss, features standardised).
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class LinearHead:
    """Dense-layer weights on raw (unstandardised) features."""

    kernel: np.ndarray
    """float32 (n_features, units): units is 1 (sigmoid, probability of labels[1]) or n_classes (softmax)."""
    bias: np.ndarray
    """float32 (units,)."""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Per-label probabilities (N, n_labels), the layout of ModelContract.scores."""
        logits = np.asarray(features, np.float64) @ self.kernel + self.bias
        if self.kernel.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Chosen label indices (N,) at a 0.5 threshold (binary) or the top score."""
        return np.argmax(self.probabilities(features), axis=1)


@dataclass(frozen=True)
class HeadSearch:
    """What cross-validation found."""

    head: LinearHead
    """The head refitted on all training features with the chosen strength."""
    l2: float
    """The chosen L2 strength."""
    cv_accuracy: dict[float, float]
    """Mean held-out accuracy of each strength tried, over the folds."""
    folds: int
    """Number of cross-validation folds."""


def fit_head(features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float, steps: int = 400) -> LinearHead:
    """Fit an L2-regularised logistic regression (binary: one sigmoid unit; else softmax).

    Minimises mean cross-entropy + l2/2 * |W|^2 on standardised features with Nesterov's accelerated
    gradient (a step of 1/L for the loss's Lipschitz constant L), then folds the standardisation into
    the returned kernel and bias, so they apply to raw features.

    Args:
        features: float (N, D) pooled backbone features.
        labels: int (N,) class indices.
        n_classes: number of labels (2 gives one sigmoid unit).
        l2: regularisation strength (> 0).
        steps: gradient steps.
    """
    x = np.asarray(features, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    units = 1 if n_classes == 2 else n_classes
    targets = labels.astype(np.float64)[:, None] if units == 1 else np.eye(n_classes)[labels]
    n = len(z)
    # With fewer photos than features (a few hundred photos of 1280 features, on a device) the same iterates
    # are cheaper in the photos' space: every step keeps w = z.T @ a, so z @ w = (z @ z.T) @ a, and the
    # largest eigenvalue of z.T @ z is that of z @ z.T.
    dual = n < z.shape[1]
    gram = z @ z.T if dual else z.T @ z
    top = _largest_eigenvalue(gram / n)
    step = 1.0 / ((0.25 if units == 1 else 0.5) * top + l2)
    w = np.zeros((n if dual else z.shape[1], units))
    b = np.zeros(units)
    w_prev, b_prev = w, b
    for k in range(1, steps + 1):
        momentum = (k - 1) / (k + 2)
        vw, vb = w + momentum * (w - w_prev), b + momentum * (b - b_prev)
        error = _activate((gram @ vw if dual else z @ vw) + vb, units) - targets
        w_prev, b_prev = w, b
        w = vw - step * ((error if dual else z.T @ error) / n + l2 * vw)
        b = vb - step * error.mean(axis=0)
    if dual:
        w = z.T @ w
    kernel = w / std[:, None]
    bias = b - mean @ kernel
    return LinearHead(kernel.astype(np.float32), bias.astype(np.float32))


def search_head(
    features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int, grid: tuple[float, ...] = L2_GRID, folds: int = 5
) -> HeadSearch:
    """Choose the L2 strength by stratified k-fold cross-validation on the training features, then refit.

    Ties go to the stronger regularisation (the simpler model). With fewer photos per class than
    folds, the folds shrink to the smallest class's count (at least 2).
    """
    labels = np.asarray(labels, dtype=np.intp)  # intp: 32-bit numpy's bincount refuses int64 (armhf Pi OS)
    folds = max(2, min(folds, int(np.bincount(labels, minlength=n_classes).min())))
    fold_of = _stratified_folds(labels, folds, seed)
    cv = {}
    for l2 in grid:
        correct = 0
        for fold in range(folds):
            held = fold_of == fold
            head = fit_head(features[~held], labels[~held], n_classes, l2)
            correct += int(np.sum(head.predict(features[held]) == labels[held]))
        cv[l2] = correct / len(labels)
    best = max(grid, key=lambda l2: (cv[l2], l2))
    return HeadSearch(fit_head(features, labels, n_classes, best), best, cv, folds)


def _activate(logits: np.ndarray, units: int) -> np.ndarray:
    if units == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _largest_eigenvalue(matrix: np.ndarray, iterations: int = 50) -> float:
    """The largest eigenvalue of a symmetric positive semi-definite matrix (power iteration, slightly
    overestimated so that the step stays safe)."""
    v = np.ones(matrix.shape[0]) / np.sqrt(matrix.shape[0])
    value = 0.0
    for _ in range(iterations):
        w = matrix @ v
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 1.0
        v = w / value
    return 1.05 * value


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each sample, each class spread evenly over the folds, seeded."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of
