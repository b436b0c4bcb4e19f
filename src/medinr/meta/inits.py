"""Named, content-hashed initialisations.

Every bitstream records the name and an 8-byte digest of the initialisation its parameters are
deltas from; the decoder rebuilds (or loads) that init and refuses to decode if the digest differs.
``random`` is generated from a fixed PCG64 stream by our own integer-to-float conversion, so it is
identical on every machine and library version.

Meta-learned inits are package data (``medinr/data/inits``: ``<name>.pt`` files indexed by
``manifest.json`` with their SHA-256). They are *per scale*: a file holds, for a base config (every
config field but ``scales`` and ``hidden``) and a few hidden widths, the parameters of ``scales``
octave bands meta-learned on tasks of one size. Band s means the same frequency whatever the image
size, so a config with fewer scales takes the first ones and a config with more takes all of them
and the random init's parameters for the extra bands. The digest covers exactly those assembled
tensors, the ones the decoder rebuilds.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medinr.errors import InitError
from medinr.io.common import atomic_write
from medinr.models import ARCHITECTURES, build_model

RANDOM = "random"
_SEED = 0x6D6564696E72  # "medinr"

FORMAT = "medinr-init"
FORMAT_VERSION = 1
#: where installed inits live (tests point it elsewhere)
INIT_DIR = Path(__file__).resolve().parents[1] / "data" / "inits"
MANIFEST = "manifest.json"
#: which meta-learned family serves a modality (cine frames are MRI-like images)
MODALITY_FAMILY = {"cxr": "cxr", "mri": "mri", "cine": "mri"}


@dataclass(frozen=True)
class Init:
    """Parameters (in the model's ``parameters()`` order) that fitting starts from and deltas refer to."""

    name: str
    arch: str
    params: tuple[torch.Tensor, ...]
    digest: bytes

    def clone_params(self) -> list[torch.Tensor]:
        return [p.clone() for p in self.params]


def digest_of(name: str, arch: str, config_bytes: bytes, params: list[torch.Tensor]) -> bytes:
    h = hashlib.sha256(f"{name}|{arch}|".encode() + config_bytes)
    for p in params:
        h.update(np.ascontiguousarray(p.detach().numpy(), dtype="<f4").tobytes())
    return h.digest()[:8]


def _pcg_uniform(rng: np.random.Generator) -> Any:
    def uniform(shape: torch.Size) -> torch.Tensor:
        raw = rng.bit_generator.random_raw(int(np.prod(shape)))
        values = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return torch.from_numpy(values.astype(np.float32).reshape(tuple(shape)))
    return uniform


def random_init(arch: str, config: Any) -> Init:
    """The reproducible random initialisation of an architecture and config."""
    model = build_model(arch, config)
    model.reset_parameters(_pcg_uniform(np.random.Generator(np.random.PCG64(_SEED))))
    params = [p.detach().clone() for p in model.parameters()]
    return Init(RANDOM, arch, tuple(params), digest_of(RANDOM, arch, config.to_bytes(), params))


def _bands(config: Any) -> int | None:
    """Octave bands of a banded (``seed``) config; None for configs without bands (``grid``), whose init
    file holds each tensor under one leading axis of length 1."""
    return getattr(config, "scales", None)


def _base_config(config: Any) -> dict[str, Any]:
    """The config fields a per-scale init is tied to (all but ``scales`` and ``hidden``), as serialised; a config
    with ``init_fields`` (``GridConfig``) says which of its values an init file takes as equal."""
    loose = {"hidden": 1, **({} if _bands(config) is None else {"scales": 1})}
    rounded = type(config).from_bytes(replace(config, **loose).to_bytes())
    rounded = rounded.init_fields() if hasattr(rounded, "init_fields") else rounded
    return {k: v for k, v in asdict(rounded).items() if k not in ("scales", "hidden")}


@dataclass(frozen=True)
class InitFile:
    """A meta-learned per-scale init: ``params[width]`` in the model's ``parameters()`` order, each tensor
    with ``scales`` leading bands; ``record`` says how it was made (arguments, validation, summary)."""

    name: str
    arch: str
    modality: str
    base_config: dict[str, Any]
    scales: int
    params: dict[int, tuple[torch.Tensor, ...]]
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_training(cls, name: str, arch: str, modality: str, config: Any,
                      params: dict[int, list[torch.Tensor]], record: dict[str, Any]) -> InitFile:
        def stored(t: torch.Tensor) -> torch.Tensor:
            return t.detach().clone() if _bands(config) else t.detach()[None].clone()

        return cls(name, arch, modality, _base_config(config), _bands(config) or 1,
                   {w: tuple(stored(t) for t in p) for w, p in params.items()}, record)

    def covers(self, arch: str, config: Any) -> bool:
        """Whether this file has parameters for ``config`` (same base config, one of its widths). A field added to
        the config after the file was made (e.g. ``GridConfig.static``) is taken at its default."""
        return (arch == self.arch and config.hidden in self.params
                and _base_config(config) == {**_base_config(type(config)()), **self.base_config})

    def init_for(self, config: Any) -> Init:
        """The init of ``config``: the file's first bands, random ones beyond them; raises InitError if not covered."""
        if not self.covers(self.arch, config):
            raise InitError(f"initialisation {self.name!r} has no parameters for this {self.arch} configuration "
                            f"(width {config.hidden}; it has widths {sorted(self.params)} for {self.base_config})")
        bands = _bands(config)
        fill = random_init(self.arch, config).params if bands is None or bands > self.scales else None
        params = []
        for i, meta in enumerate(self.params[config.hidden]):
            if bands is None:
                params.append(meta[0])
            else:
                part = meta[:bands]
                params.append(part if fill is None else torch.cat([part, fill[i][self.scales:]]))
        if fill is not None and any(p.shape != f.shape for p, f in zip(params, fill)):
            raise InitError(f"initialisation {self.name!r} does not match the {self.arch} network's shapes")
        return Init(self.name, self.arch, tuple(params), digest_of(self.name, self.arch, config.to_bytes(), params))

    def save(self, path: Path) -> None:
        """Write atomically (``torch.save`` of plain containers, readable with ``weights_only=True``)."""
        blob = {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name, "arch": self.arch,
                "modality": self.modality, "base_config": json.dumps(self.base_config), "scales": self.scales,
                "params": {str(w): list(p) for w, p in self.params.items()}, "record": json.dumps(self.record)}
        atomic_write(Path(path), ".pt", lambda tmp: torch.save(blob, tmp))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_init_file(path: Path, sha256: str | None = None) -> InitFile:
    """Read and check an init file; InitError when missing, corrupt (SHA-256 or content) or of another version."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise InitError(f"initialisation file {path} is missing or unreadable") from None
    if sha256 is not None and _sha256(data) != sha256:
        raise InitError(f"initialisation file {path} is corrupt (SHA-256 differs from the manifest)")
    try:
        blob = torch.load(io.BytesIO(data), weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError("not a medinr init file")
        if blob.get("version") != FORMAT_VERSION:
            raise InitError(f"initialisation file {path} has format version {blob.get('version')}; "
                            f"this medinr reads version {FORMAT_VERSION}")
        init = InitFile(str(blob["name"]), str(blob["arch"]), str(blob["modality"]), json.loads(blob["base_config"]),
                        int(blob["scales"]), {int(w): tuple(p) for w, p in blob["params"].items()},
                        json.loads(blob["record"]))
        if init.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {init.arch!r}")
        ok = all(isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape[0] == init.scales
                 and bool(torch.isfinite(t).all()) for p in init.params.values() for t in p)
        if not ok or not init.params:
            raise ValueError("bad parameter tensors")
    except InitError:
        raise
    except Exception as exc:  # noqa: BLE001 (unpickling damaged data can raise anything)
        raise InitError(f"initialisation file {path} is corrupt ({' '.join(str(exc).split())[:120]})") from None
    return init


def installed_inits() -> dict[str, dict[str, Any]]:
    """The manifest of installed inits (name -> entry); empty when none are installed."""
    path = INIT_DIR / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise ValueError("other format or version")
        return dict(manifest["inits"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InitError(f"init manifest {path} is corrupt ({exc})") from None


@functools.lru_cache(maxsize=16)
def _read_installed_file(path: Path, sha256: str, mtime_ns: int) -> InitFile:
    """:func:`read_init_file`, once per process for each version of an installed file (7 ms of a 100 ms decode)."""
    return read_init_file(path, sha256)


def read_installed(name: str) -> InitFile:
    """The installed init file called ``name``, checked against the manifest's SHA-256."""
    entry = installed_inits().get(name)
    if entry is None:
        raise InitError(f"no initialisation named {name!r} is installed")
    path = INIT_DIR / entry["file"]
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError:
        raise InitError(f"initialisation file {path} is missing or unreadable") from None
    init = _read_installed_file(path, entry["sha256"], mtime_ns)
    if init.name != name:
        raise InitError(f"initialisation file {entry['file']} holds {init.name!r}, not {name!r}")
    return init


def write_manifest(directory: Path, commands: dict[str, str] | None = None) -> Path:
    """Index every ``*.pt`` init in ``directory`` into its manifest (SHA-256, widths, record, and the command
    that reproduces it, kept from the old manifest unless ``commands`` gives a new one)."""
    directory = Path(directory)
    old_path = directory / MANIFEST
    old = json.loads(old_path.read_text()).get("inits", {}) if old_path.exists() else {}
    inits = {}
    for file in sorted(directory.glob("*.pt")):
        init = read_init_file(file)
        command = (commands or {}).get(init.name, old.get(init.name, {}).get("command"))
        inits[init.name] = {"file": file.name, "sha256": _sha256(file.read_bytes()), "arch": init.arch,
                            "modality": init.modality, "scales": init.scales, "widths": sorted(init.params),
                            "base_config": init.base_config, "command": command, "record": init.record}
    text = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "inits": inits}, indent=1) + "\n"
    atomic_write(old_path, ".json", lambda tmp: tmp.write_text(text))
    return old_path


def init_name_for(arch: str, modality: str) -> str | None:
    """The meta-learned init's name for a modality (``seed-mri`` for cine too), None for modalities without one."""
    family = MODALITY_FAMILY.get(modality)
    return None if family is None else f"{arch}-{family}"


def load_init(name: str, arch: str, config: Any) -> Init:
    """Resolve an init by name for an architecture and config (InitError when missing, corrupt or not covering it)."""
    if name == RANDOM:
        return random_init(arch, config)
    init = read_installed(name)
    if init.arch != arch:
        raise InitError(f"initialisation {name!r} is for architecture {init.arch!r}, not {arch!r}")
    return init.init_for(config)


def installed_init(name: str | None, arch: str, config: Any) -> Init:
    """The installed init ``name`` for ``config`` when it is installed and covers it, else the random init.
    A damaged installation is an error, never a silent fallback."""
    if name is None or name not in installed_inits():
        return random_init(arch, config)
    init = read_installed(name)
    return init.init_for(config) if init.covers(arch, config) else random_init(arch, config)


#: a learned init serves bpp targets up to this many times the top of the range it was learned at (its record's
#: ``task_bpps``); above that an encoder starts from the random init. 256 px crops of two held-back cxr/train
#: series (``fast``; ``grid-wavelet-cxr``, learned at 0.05-0.6 bpp), random -> learned: -0.8 and -1.1 dB at 2 bpp,
#: -2.2 and -6.7 dB at 4 bpp, -0.3 to +0.0 dB at 0.6-1.2 bpp (the networks learn slowly at high rates,
#: ``LR_NET_KNEE_BPP``, and stay near a low-rate optimum)
LEARNED_REACH = 2.0


def serves_rate(name: str, bpp: float | None) -> bool:
    """Whether the installed init ``name`` serves a bpp target (always, without a target or a recorded range)."""
    bpps = installed_inits().get(name, {}).get("record", {}).get("task_bpps")
    return bpp is None or not bpps or bpp <= LEARNED_REACH * max(bpps)


def modality_init(arch: str, modality: str, config: Any) -> Init:
    """What an encoder starts from: the modality's meta-learned init when one is installed for this exact
    config, else the random init."""
    return installed_init(init_name_for(arch, modality), arch, config)


def check_digest(init: Init, expected: bytes) -> None:
    """Refuse to decode with an init other than the one the stream was made with."""
    if init.digest != expected:
        raise InitError(f"initialisation {init.name!r} here (digest {init.digest.hex()}) differs from "
                        f"the one this file was encoded with (digest {expected.hex()}); "
                        "install the medinr version that wrote it, or pass the init file it was encoded with "
                        "(--init FILE)")


class FileInitCodec:
    """An architecture codec (:class:`medinr.archs.ArchCodec`) that starts from, and decodes with, the init in
    one file (``medinr encode/decode --init FILE``, e.g. made by ``medinr meta-train``) instead of the
    installed ones; everything else is the wrapped codec's."""

    def __init__(self, codec: Any, init_file: InitFile, path: str | os.PathLike[str]) -> None:
        self.codec, self.init_file, self.path = codec, init_file, Path(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.codec, name)

    def load_init(self, name: str, config: Any) -> Init:
        """The file's init for ``config`` (InitError when the file is for another network)."""
        file = self.init_file
        if not isinstance(config, ARCHITECTURES[file.arch].config_type) or not file.covers(file.arch, config):
            raise InitError(f"initialisation file {self.path} ({file.arch}, widths {sorted(file.params)}) has no "
                            f"parameters for this {self.codec.name} configuration {config}")
        return file.init_for(config)

    def default_init(self, config: Any, modality: str, bpp: float | None = None) -> Init:
        return self.load_init(self.init_file.name, config)

    def plan(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped codec's plan, run with this file's init as the default (``grid`` keeps a learned init's
        network for a bpp target, where it would narrow a random one's)."""
        return type(self.codec).plan(self, *args, **kwargs)

    def encoder_config(self, cfg: Any) -> Any:
        """``cfg`` (an EncoderConfig) with its widths limited to the file's, so rate control picks a covered one."""
        widths = tuple(sorted(self.init_file.params))
        return replace(cfg, widths=tuple(w for w in cfg.widths if w in widths) or widths,
                       default_width=cfg.default_width if cfg.default_width in widths else widths[-1])
