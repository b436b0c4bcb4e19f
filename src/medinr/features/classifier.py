"""Modality classifier for ``--modality auto`` when the tags say nothing (PNG, JPEG, NIfTI, NumPy, DICOM OT).

Softmax regression over 58 pooled statistics of the hybrid features Phi(I) and their maps (pooled HOG
orientations, sorted regional gradient energies, DWT band energies, LBP histogram, edge/homogeneity map
statistics, intensity histogram) of a fixed-size view of the image. Classes are the training folders:
``cxr``, ``mri`` (brain volumes) and ``cine`` (cardiac frames). The codec only needs the family: a chest
X-ray, or an MR-like image; the MR family is ``cine`` for a multi-frame sequence that is not a volume,
``mri`` otherwise, and ``generic`` when the classifier is unsure.

The shipped weights (``medinr/data/modality_classifier.json``, a few kB of JSON) are trained on the
``train`` folders only, and rebuilt bit for bit by::

    python -m medinr.features.classifier train src/medinr/data/modality_classifier.json --data ../shared/data

``python -m medinr.features.classifier evaluate --data ../shared/data`` scores it on the ``test`` folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medinr.errors import MedinrError
from medinr.features._common import normalise_range
from medinr.features.hybrid import FeatureConfig, extract_features
from medinr.io.image import MedicalImage

CLASSES = ("cxr", "mri", "cine")
#: classes that are MR-like images (served by the same init family)
MR_CLASSES = ("mri", "cine")
#: side of the square view the features are computed on (whole images and crops are resized to it)
VIEW = 128
#: below this probability of its family an image is ``generic``
MIN_CONFIDENCE = 0.7
FORMAT = "medinr-modality-classifier"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "modality_classifier.json"
_FEATURES = FeatureConfig()
_HIST_BINS = 8


def view_of(frame: np.ndarray) -> np.ndarray:
    """The (VIEW, VIEW) float32 view a 2D frame is classified on (antialiased resize, aspect not kept),
    the same resize meta-learning tasks use, so training crops and images at run time look alike."""
    from medinr.meta.tasks import resize

    return resize(frame, VIEW).numpy()


def _share(x: np.ndarray) -> np.ndarray:
    total = float(x.sum())
    return x / total if total > 0 else x


def modality_features(view: np.ndarray) -> np.ndarray:
    """The classifier's 58 numbers of a 2D view: pooled statistics of Phi(I) and of its maps."""
    feats = extract_features(view, config=_FEATURES)
    o, g2, n_dwt = _FEATURES.orientations, _FEATURES.hog_grid ** 2, 1 + 3 * _FEATURES.levels
    hog = feats.vector[:o * g2].reshape(o, g2)
    dwt = feats.vector[o * g2:o * g2 + n_dwt]
    lbp = feats.vector[o * g2 + n_dwt:]
    unit = normalise_range(view)
    hist = np.histogram(unit, bins=_HIST_BINS, range=(0.0, 1.0))[0] / unit.size
    edge, hom = feats.edge, feats.homogeneity
    stats = [edge.mean(), edge.std(), *np.percentile(edge, [50, 90]), hom.mean(), hom.std(), unit.mean(), unit.std()]
    return np.concatenate([_share(hog.sum(1)), _share(np.sort(hog.sum(0))[::-1]), dwt, lbp, hist,
                           np.asarray(stats)]).astype(np.float64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ModalityClassifier:
    """Standardisation and softmax weights over :func:`modality_features`; ``record`` says how it was made."""

    classes: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities of (N, D) feature rows."""
        return _softmax(((features - self.mean) / self.std) @ self.weights.T + self.bias)

    def classify_frame(self, frame: np.ndarray) -> dict[str, float]:
        """Class probabilities of one 2D frame of stored values."""
        p = self.probabilities(modality_features(view_of(frame))[None])[0]
        return dict(zip(self.classes, p.tolist()))

    def choose(self, image: MedicalImage) -> tuple[str, float]:
        """The codec modality of an image (its middle frame classified) and the family's probability:
        ``cxr``; ``cine`` (an MR-like multi-frame sequence that is not a volume) or ``mri``; ``generic``
        when the family's probability is below :data:`MIN_CONFIDENCE`."""
        stack = image.frame_stack()
        probs = self.classify_frame(stack[len(stack) // 2])
        mr = sum(probs[c] for c in MR_CLASSES)
        if max(mr, probs["cxr"]) < MIN_CONFIDENCE:
            return "generic", max(mr, probs["cxr"])
        if probs["cxr"] > mr:
            return "cxr", probs["cxr"]
        sequence = image.frames > 1 and (image.frame_times is not None or image.source_format != "nifti")
        return ("cine" if sequence else "mri"), mr

    def save(self, path: Path) -> None:
        """Write as JSON (atomically)."""
        from medinr.io.common import atomic_write

        blob = {"format": FORMAT, "version": FORMAT_VERSION, "classes": list(self.classes), "view": VIEW,
                "mean": self.mean.tolist(), "std": self.std.tolist(), "weights": self.weights.tolist(),
                "bias": self.bias.tolist(), "record": self.record}
        text = json.dumps(blob) + "\n"
        atomic_write(Path(path), ".json", lambda tmp: tmp.write_text(text))


def read_classifier(path: Path) -> ModalityClassifier:
    """Read and check a classifier file; MedinrError (one line) when missing, corrupt or of another version."""
    path = Path(path)
    try:
        blob = json.loads(path.read_text())
    except OSError:
        raise MedinrError(f"modality classifier {path} is missing or unreadable") from None
    except ValueError as exc:
        raise MedinrError(f"modality classifier {path} is corrupt ({exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise MedinrError(f"modality classifier {path} is corrupt (not a {FORMAT} file)")
    if blob.get("version") != FORMAT_VERSION or blob.get("view") != VIEW:
        raise MedinrError(f"modality classifier {path} has format version {blob.get('version')} (view "
                          f"{blob.get('view')}); this medinr reads version {FORMAT_VERSION} (view {VIEW})")
    try:
        model = ModalityClassifier(tuple(blob["classes"]), *(np.asarray(blob[k], dtype=np.float64)
                                                             for k in ("mean", "std", "weights", "bias")),
                                   record=dict(blob.get("record", {})))
        k, d = len(model.classes), model.mean.shape[0]
        if (set(model.classes) != set(CLASSES) or model.std.shape != (d,) or model.weights.shape != (k, d)
                or model.bias.shape != (k,) or not all(np.isfinite(a).all() for a in
                                                       (model.mean, model.std, model.weights, model.bias))
                or (model.std <= 0).any()):
            raise ValueError("bad shapes or values")
    except (KeyError, TypeError, ValueError) as exc:
        raise MedinrError(f"modality classifier {path} is corrupt ({exc})") from None
    return model


@lru_cache(maxsize=1)
def installed_classifier() -> ModalityClassifier:
    """The shipped classifier (read once per process)."""
    return read_classifier(DEFAULT_PATH)


def training_views(data: Path, per_class: int, seed: int) -> dict[str, np.ndarray]:
    """Feature rows of ``per_class`` views (whole slices and crops, as meta-learning tasks draw them) of each
    class's ``train`` folder under ``data``."""
    from medinr.meta.tasks import TaskSampler, load_sources

    rows = {}
    for i, name in enumerate(CLASSES):
        sources, _ = load_sources([Path(data) / name / "train"])
        sampler = TaskSampler(sources, VIEW, 1, seed + i, whole_fraction=0.5)
        rows[name] = np.stack([modality_features(sampler.crop().numpy()) for _ in range(per_class)])
    return rows


def fit_softmax(rows: dict[str, np.ndarray], l2: float = 1e-2) -> ModalityClassifier:
    """Softmax regression (L-BFGS, L2 penalty ``l2``) on standardised features, classes in :data:`CLASSES`."""
    from scipy.optimize import minimize

    x = np.concatenate([rows[c] for c in CLASSES])
    y = np.concatenate([np.full(len(rows[c]), i) for i, c in enumerate(CLASSES)])
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    xs = (x - mean) / std
    k, d = len(CLASSES), x.shape[1]
    onehot = np.eye(k)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k * d].reshape(k, d), theta[k * d:]
        p = _softmax(xs @ w.T + b)
        value = -np.log(p[np.arange(len(y)), y] + 1e-300).mean() + 0.5 * l2 * (w ** 2).sum()
        g = (p - onehot) / len(y)
        return value, np.concatenate([(g.T @ xs + l2 * w).ravel(), g.sum(0)])

    theta = minimize(loss, np.zeros(k * d + k), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    model = ModalityClassifier(CLASSES, mean, std, theta[:k * d].reshape(k, d), theta[k * d:])
    train_acc = float((model.probabilities(x).argmax(1) == y).mean())
    return ModalityClassifier(CLASSES, mean, std, model.weights, model.bias,
                              {"train_views_per_class": {c: len(rows[c]) for c in CLASSES}, "l2": l2,
                               "train_accuracy": train_acc})


def train(data: Path, per_class: int = 300, seed: int = 0) -> ModalityClassifier:
    """The classifier trained on ``data``/{cxr,mri,cine}/train (what the shipped file holds)."""
    model = fit_softmax(training_views(data, per_class, seed))
    model.record.update(per_class=per_class, seed=seed, view=VIEW)
    return model


def evaluate(data: Path, model: ModalityClassifier) -> dict[str, Any]:
    """Scores on the ``test`` folders (evaluation only): per file (what the codec decides, tags ignored) and
    per frame (the 3-class argmax and the family)."""
    from medinr.io import read

    files, frames = [], {"class": [0, 0], "family": [0, 0]}
    for truth in CLASSES:
        for path in sorted((Path(data) / truth / "test").iterdir()):
            image = read(path)
            chosen, confidence = model.choose(image)
            files.append({"file": f"{truth}/test/{path.name}", "truth": truth, "chosen": chosen,
                          "confidence": round(confidence, 4), "frames": image.frames})
            stack = image.frame_stack()
            probs = model.probabilities(np.stack([modality_features(view_of(f)) for f in stack]))
            predicted = [model.classes[i] for i in probs.argmax(1)]
            frames["class"][0] += sum(p == truth for p in predicted)
            frames["family"][0] += sum((p in MR_CLASSES) == (truth in MR_CLASSES) for p in predicted)
            frames["class"][1] += len(predicted)
            frames["family"][1] += len(predicted)
    correct = sum(f["chosen"] == f["truth"] for f in files)
    family = sum((f["chosen"] in MR_CLASSES) == (f["truth"] in MR_CLASSES) and f["chosen"] != "generic"
                 for f in files)
    return {"files": files, "file_accuracy": correct / len(files), "file_family_accuracy": family / len(files),
            "frame_class_accuracy": frames["class"][0] / frames["class"][1],
            "frame_family_accuracy": frames["family"][0] / frames["family"][1], "frames": frames["class"][1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train on DATA/{cxr,mri,cine}/train and write OUT (JSON)")
    p_train.add_argument("out", type=Path)
    p_train.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    p_train.add_argument("--per-class", type=int, default=300)
    p_eval = sub.add_parser("evaluate", help="accuracy on DATA/{cxr,mri,cine}/test")
    p_eval.add_argument("--data", type=Path, required=True)
    p_eval.add_argument("--model", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    if args.command == "train":
        model = train(args.data, args.per_class)
        model.record["command"] = (f"python -m medinr.features.classifier train {args.out} --data {args.data}"
                                   + ("" if args.per_class == 300 else f" --per-class {args.per_class}"))
        model.save(args.out)
        print(f"wrote {args.out}: train accuracy {model.record['train_accuracy']:.3f}")
    else:
        print(json.dumps(evaluate(args.data, read_classifier(args.model)), indent=1))


if __name__ == "__main__":
    sys.exit(main())
