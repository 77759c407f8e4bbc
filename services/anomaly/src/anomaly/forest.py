"""The multivariate model: a scikit-learn IsolationForest, shipped as plain arrays.

Training (`train`) fits sklearn's IsolationForest and `Forest.of` copies its trees out:
per node the split feature and threshold, the children, and at each leaf the path length
sklearn credits it (depth + the average path length of the samples left there). `score`
walks every tree for every window at once in numpy and returns exactly what sklearn's
`-score_samples` would (a test holds the two together), without a Python call per tree:
scoring the windows that close in a batch costs a few array operations, not sklearn's
per-tree overhead, which would halve replay throughput.

The artefact is an .npz of those arrays plus a JSON header (version, feature names, alert
threshold, how it was trained): no pickle, so loading it runs no code and does not depend
on the scikit-learn version installed.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SHIPPED = "iforest-1.0.npz"


def average_path_length(n: FloatArray) -> FloatArray:
    """c(n): the mean path length of an unsuccessful search in a binary search tree of n
    samples (Liu et al. 2008), as sklearn computes it (c(1) = 0, c(2) = 1)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


@dataclass(frozen=True)
class Forest:
    """Isolation trees as padded arrays (trees x nodes); feature -1 marks a leaf."""

    version: str
    features: tuple[str, ...]
    threshold: float  # alert when the score is at or above this
    feature: npt.NDArray[np.int16]
    split: FloatArray
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    leaf_length: FloatArray  # path length credited at a leaf (0 elsewhere)
    depth: int  # longest root-to-leaf path
    norm: float  # trees x c(max_samples)
    meta: dict[str, Any]

    def score(self, x: FloatArray) -> FloatArray:
        """Anomaly score of each row of `x` (windows x features) in (0, 1]: higher is more
        unusual; about 0.5 and below is ordinary. Equals sklearn's -score_samples."""
        n, (trees, size) = len(x), self.feature.shape
        if not n:
            return np.zeros(0)
        # sklearn compares float32 features with float64 thresholds: do the same.
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64).ravel()
        width = x.shape[1]
        # Flat node numbers (tree * size + node), so each step is one gather per array.
        base = np.arange(trees, dtype=np.int64) * size
        feature, split = self.feature.ravel(), self.split.ravel()
        left, right = (self.left + base[:, None]).ravel(), (self.right + base[:, None]).ravel()
        node = np.broadcast_to(base, (n, trees)).ravel().copy()
        row = np.repeat(np.arange(n, dtype=np.int64) * width, trees)
        for _ in range(self.depth):
            f = feature[node]
            go_left = x32[row + np.maximum(f, 0)] <= split[node]
            step = np.where(go_left, left[node], right[node])
            node = np.where(f >= 0, step, node)
        lengths = self.leaf_length.ravel()[node].reshape(n, trees).sum(axis=1)
        result: FloatArray = 2.0 ** (-lengths / self.norm)
        return result

    @classmethod
    def of(
        cls, model: IsolationForest, features: tuple[str, ...], threshold: float, **meta: Any
    ) -> Forest:
        """Copy a fitted sklearn IsolationForest (all features per tree) out into arrays."""
        trees = [est.tree_ for est in model.estimators_]
        size = max(t.node_count for t in trees)
        shape = (len(trees), size)
        feature = np.full(shape, -1, dtype=np.int16)
        split, length = np.zeros(shape), np.zeros(shape)
        left, right = np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32)
        deepest = 0
        for i, (t, cols) in enumerate(zip(trees, model.estimators_features_, strict=True)):
            k = t.node_count
            inner = t.children_left[:k] >= 0
            feature[i, :k] = np.where(inner, np.asarray(cols)[np.maximum(t.feature[:k], 0)], -1)
            split[i, :k] = np.where(inner, t.threshold[:k], 0.0)
            left[i, :k] = np.maximum(t.children_left[:k], 0)
            right[i, :k] = np.maximum(t.children_right[:k], 0)
            depth = np.zeros(k)
            for node in range(k):  # children always come after their parent
                if inner[node]:
                    depth[t.children_left[node]] = depth[t.children_right[node]] = depth[node] + 1
            samples = t.n_node_samples[:k].astype(np.float64)
            length[i, :k] = np.where(inner, 0.0, depth + average_path_length(samples))
            deepest = max(deepest, int(depth.max()))
        norm = len(trees) * float(average_path_length(np.array([model.max_samples_]))[0])
        return cls(
            str(meta.pop("version")),
            features,
            threshold,
            feature,
            split,
            left,
            right,
            length,
            deepest,
            norm,
            meta,
        )

    def save(self) -> bytes:
        header = {
            "version": self.version,
            "features": list(self.features),
            "threshold": self.threshold,
            "depth": self.depth,
            "norm": self.norm,
            **self.meta,
        }
        out = io.BytesIO()
        np.savez_compressed(
            out,
            header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            feature=self.feature,
            split=self.split,
            left=self.left,
            right=self.right,
            leaf_length=self.leaf_length,
        )
        return out.getvalue()

    @classmethod
    def load(cls, data: bytes) -> Forest:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            arrays = {k: z[k] for k in ("feature", "split", "left", "right", "leaf_length")}
        version, features = str(header.pop("version")), tuple(header.pop("features"))
        threshold, depth = float(header.pop("threshold")), int(header.pop("depth"))
        norm = float(header.pop("norm"))
        return cls(
            version,
            features,
            threshold,
            arrays["feature"],
            arrays["split"],
            arrays["left"],
            arrays["right"],
            arrays["leaf_length"],
            depth,
            norm,
            header,
        )


@functools.cache
def shipped() -> Forest:
    """The model shipped in the package (read once per process)."""
    return Forest.load(resources.files("anomaly.models").joinpath(SHIPPED).read_bytes())


def fit(x: FloatArray, *, seed: int, trees: int = 100, max_samples: int = 256) -> IsolationForest:
    """A seeded sklearn IsolationForest on normal windows (rows of `x`)."""
    from sklearn.ensemble import IsolationForest  # training only: the service never fits

    model = IsolationForest(n_estimators=trees, max_samples=max_samples, random_state=seed)
    return model.fit(x)
