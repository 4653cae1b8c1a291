"""Atomic, verified checkpoints without pickle: weights, map, optimizer and RNG state.

``run/checkpoints/step_000100/`` is written under a temporary name and renamed into place,
then ``run/checkpoints/latest`` is replaced atomically; a manifest of SHA-256 sums lets a
truncated or corrupt checkpoint be refused instead of loaded. The last two are kept; a staging
folder left by a writer killed mid-write is never loaded and is removed by the next save.

Every file is safetensors or JSON, so loading a run folder someone sent you runs no code
(``torch.load`` unpickles): the optimizer's per-parameter tensors go to
``optimizer.safetensors`` and its hyper-parameters to ``optimizer.json``; the Python, NumPy,
torch and CUDA generator states to ``rng.safetensors`` + ``rng.json``. The manifest sits
beside the files it checks, so it detects corruption, not tampering.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_folder

KEEP = 2
_STEP = re.compile(r"step_(\d+)")
_LEGACY = ("optimizer.pt", "rng.pt")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().cpu().contiguous().clone()


# ---------------------------------------------------------------------------------------------
# optimizer state <-> safetensors + JSON


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into named tensors and a JSON-able description.

    Tensors are named ``state.<param>.<key>`` (AdamW: ``exp_avg``, ``exp_avg_sq``, ``step``) and
    ``group.<i>.<key>`` (a tensor hyper-parameter); everything else goes to the JSON part.
    """
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict] = {}
    for param, values in state_dict["state"].items():
        plain = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{key}"] = _cpu(value)
            else:
                plain[key] = value
        state[str(param)] = plain
    groups = []
    for index, group in enumerate(state_dict["param_groups"]):
        plain, tuples = {}, []
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                tensors[f"group.{index}.{key}"] = _cpu(value)
            else:
                plain[key] = list(value) if isinstance(value, tuple) else value
                if isinstance(value, tuple):
                    tuples.append(key)
        groups.append({"values": plain, "tuples": tuples})
    return tensors, {"format": 1, "type": type(optimizer).__name__, "state": state, "param_groups": groups}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The inverse of ``optimizer_to_files``: a state dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {int(param): dict(values) for param, values in meta["state"].items()}
    groups = []
    for group in meta["param_groups"]:
        values = dict(group["values"])
        for key in group["tuples"]:
            values[key] = tuple(values[key])
        groups.append(values)
    for name, tensor in tensors.items():
        kind, index, key = name.split(".", 2)
        if kind == "state":
            state.setdefault(int(index), {})[key] = tensor
        else:
            groups[int(index)][key] = tensor
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------------------------
# RNG state <-> safetensors + JSON


def rng_to_files() -> tuple[dict[str, torch.Tensor], dict]:
    """The Python, NumPy, torch and CUDA generator states as tensors plus their scalar parts."""
    version, internal, gauss_next = random.getstate()
    algorithm, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"python": torch.tensor(internal, dtype=torch.int64),
               "numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
               "torch": torch.get_rng_state()}
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    tensors.update({f"cuda.{i}": state for i, state in enumerate(cuda)})
    meta = {"python": {"version": version, "gauss_next": gauss_next},
            "numpy": {"algorithm": algorithm, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
            "cuda_devices": len(cuda)}
    return tensors, meta


def rng_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore what ``rng_to_files`` saved (CUDA only where this machine has the same devices)."""
    python = meta["python"]
    random.setstate((python["version"], tuple(int(v) for v in tensors["python"].tolist()), python["gauss_next"]))
    numpy = meta["numpy"]
    np.random.set_state((numpy["algorithm"], tensors["numpy"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(meta["cuda_devices"])]
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------------------------
# folders


def save(run_dir: Path, step: int, model, mapping_module, optimizer, extra: dict) -> Path:
    """Write ``run_dir/checkpoints/step_<step>`` atomically and point ``latest`` at it.

    ``extra`` must be JSON-able; it is stored with the step in ``state.json`` and returned by ``load``.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    state_text = json.dumps({"step": step, **extra}, indent=1)  # fails before anything is written
    with atomic_folder(final) as tmp:
        save_file(_tensors(model), tmp / "model.safetensors")
        if mapping_module is not None:
            save_file(_tensors(mapping_module), tmp / "map.safetensors")
        tensors, meta = optimizer_to_files(optimizer)
        save_file(tensors, tmp / "optimizer.safetensors")
        (tmp / "optimizer.json").write_text(json.dumps(meta, indent=1))
        tensors, meta = rng_to_files()
        save_file(tensors, tmp / "rng.safetensors")
        (tmp / "rng.json").write_text(json.dumps(meta, indent=1))
        (tmp / "state.json").write_text(state_text)
        manifest = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    pointer = root / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "latest")
    for old in step_folders(run_dir)[:-KEEP]:
        shutil.rmtree(old)
    for stale in root.glob(".step_*"):  # staging folders of writers killed mid-write (one writer per run)
        shutil.rmtree(stale, ignore_errors=True)
    return final


def step_folders(run_dir: Path) -> list[Path]:
    """The run's checkpoint folders that exist, oldest first (staging folders excluded)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_STEP.fullmatch(p.name).group(1)))


def latest(run_dir: Path) -> Path | None:
    """The folder ``latest`` names, or the newest existing step folder if that one is gone (or none)."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.exists():
        name = pointer.read_text().strip()
        if _STEP.fullmatch(name) and (root / name).is_dir():
            return root / name
    folders = step_folders(run_dir)
    return folders[-1] if folders else None


def newest_intact(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that verifies, and the newer ones skipped with the reason for each."""
    skipped = []
    candidates = step_folders(run_dir)
    pointed = latest(run_dir)
    if pointed is not None and pointed in candidates:  # the pointer's choice first, then older ones
        candidates = candidates[: candidates.index(pointed) + 1]
    for folder in reversed(candidates):
        try:
            verify(folder)
        except WorkbenchError as error:
            skipped.append((folder, str(error)))
            continue
        return folder, skipped
    return None, skipped


def verify(folder: Path) -> None:
    """Raise a ``WorkbenchError`` naming the problem and the fix if ``folder`` is not an intact checkpoint."""
    folder = Path(folder)
    others = [p.name for p in step_folders(folder.parent.parent) if p != folder]
    fix = (f"remove the folder {folder} and the run resumes from {others[-1]} (earlier checkpoints kept: "
           f"{', '.join(others)})") if others else f"remove the run folder {folder.parent.parent} and train again"
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise WorkbenchError(f"checkpoint {folder} does not exist")
    if not manifest_path.exists():
        raise WorkbenchError(f"checkpoint {folder} is incomplete (no manifest.json); {fix}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorkbenchError(f"checkpoint {folder} is corrupt (unreadable manifest: {error}); {fix}") from error
    if not isinstance(manifest, dict):
        raise WorkbenchError(f"checkpoint {folder} is corrupt (manifest.json is not a mapping); {fix}")
    for name, digest in manifest.items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            raise WorkbenchError(f"checkpoint {folder} is corrupt or truncated ({name} does not match its "
                                 f"checksum); refusing to load it; {fix}")


def load(folder: Path, model, mapping_module, optimizer) -> dict:
    """Verify ``folder``, restore the model, map, optimizer and RNG states; return ``state.json`` (step + extra)."""
    folder = Path(folder)
    verify(folder)
    if not (folder / "optimizer.safetensors").exists():
        legacy = any((folder / name).exists() for name in _LEGACY)
        raise WorkbenchError(f"checkpoint {folder} has no optimizer.safetensors" + (
            " (written by an older workbench that pickled the optimizer and RNG state, which loading would "
            "execute)" if legacy else "") + "; it cannot be resumed: train the run again in a new folder "
            "(its weights, model.safetensors, can still be evaluated)")
    model.load_state_dict(load_file(folder / "model.safetensors"))
    if mapping_module is not None:
        mapping_module.load_state_dict(load_file(folder / "map.safetensors"))
    meta = json.loads((folder / "optimizer.json").read_text())
    if meta.get("type") not in (None, type(optimizer).__name__):
        raise WorkbenchError(f"checkpoint {folder} holds {meta['type']} state but the run uses "
                             f"{type(optimizer).__name__}; resume with the optimizer the run was trained with")
    optimizer.load_state_dict(optimizer_from_files(load_file(folder / "optimizer.safetensors"), meta))
    rng_from_files(load_file(folder / "rng.safetensors"), json.loads((folder / "rng.json").read_text()))
    return json.loads((folder / "state.json").read_text())
