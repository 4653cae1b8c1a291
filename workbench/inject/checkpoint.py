"""Atomic, verified checkpoints: weights (safetensors), map, optimizer and RNG state.

``run/checkpoints/step_000100/`` is written under a temporary name and renamed into place,
then ``run/checkpoints/latest`` is replaced atomically; a manifest of SHA-256 sums lets a
truncated or corrupt checkpoint be refused instead of loaded. The last two are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_folder

KEEP = 2


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save(run_dir: Path, step: int, model, mapping_module, optimizer, extra: dict) -> Path:
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    with atomic_folder(final) as tmp:
        save_file(_tensors(model), tmp / "model.safetensors")
        if mapping_module is not None:
            save_file(_tensors(mapping_module), tmp / "map.safetensors")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **extra}, indent=1))
        manifest = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    pointer = root / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "latest")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old)
    return final


def latest(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "latest"
    return Path(run_dir) / "checkpoints" / pointer.read_text().strip() if pointer.exists() else None


def verify(folder: Path) -> None:
    """Raise a ``WorkbenchError`` naming the problem if ``folder`` is not a complete, intact checkpoint."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise WorkbenchError(f"checkpoint {folder} is incomplete (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise WorkbenchError(f"checkpoint {folder} is corrupt (unreadable manifest: {error})") from error
    for name, digest in manifest.items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            others = sorted(p.name for p in folder.parent.glob("step_*") if p != folder)
            hint = f"; earlier checkpoints kept: {', '.join(others)} (remove {folder.name} to resume from them)" \
                if others else ""
            raise WorkbenchError(f"checkpoint {folder} is corrupt or truncated ({name} does not match its "
                                 f"checksum); refusing to load it{hint}")


def load(folder: Path, model, mapping_module, optimizer) -> dict:
    verify(folder)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    if mapping_module is not None:
        mapping_module.load_state_dict(load_file(folder / "map.safetensors"))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
    rng = torch.load(folder / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((folder / "state.json").read_text())
