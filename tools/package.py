"""Lambda packaging: stage each function's code, build the Powertools layer.

Each function ships its own folder ``lambdas/<function>/`` plus the shared package
``lambdas/payments_common/``, without tests or caches. :func:`stage_function` copies
exactly that into ``build/lambda/<function>/<digest>/``, where ``<digest>`` is a SHA-256
over every file's path and bytes; the compute layer hands the folder to a cdktf
``TerraformAsset`` (type ARCHIVE, zipped at synth time) with that digest as the asset
hash, so the function's ``source_code_hash`` changes exactly when the code does
(a renamed file too, which cdktf's own content-only hash would miss).

Staged folders are written to a temporary sibling and renamed into place, so two
synths running at once never see a half-written folder. Files get fixed modes
(0644/0755: Lambda runs the code as another user) and a fixed mtime, so the zip
cdktf makes is byte-for-byte the same on every synth of the same code.

``python -m tools.package layer`` pip-installs ``lambdas/requirements.txt`` (pinned by
``constraints.txt``) for the Lambda platform into ``build/powertools-layer/python``.
It does nothing when the layer was already built from the same inputs; the synth
refuses to run without it (``make layer``). ``python -m tools.package stage``
stages every function and prints its files and sizes.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
BUILD_DIR = REPO_ROOT / "build"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
LAMBDA_REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"

#: The package every function ships next to its own modules.
SHARED_PACKAGE = "payments_common"
#: Every function folder under ``lambdas/``, in the order the compute layer builds them.
FUNCTIONS: tuple[str, ...] = (
    "payment_validation",
    "payment_processing",
    "payment_status",
    "health",
    "failover_orchestrator",
    "authorizer",
)
#: Folders never shipped, wherever they are.
EXCLUDED_DIRS = frozenset(
    {"tests", "test", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", ".venv"}
)
#: File names never shipped (tests, bytecode, docs, editor and OS droppings).
EXCLUDED_FILES: tuple[str, ...] = (
    "*.pyc",
    "*.pyo",
    "test_*.py",
    "*_test.py",
    "conftest.py",
    "*.md",
    ".*",
    "*~",
    "*.swp",
)
#: zip timestamps start in 1980; every staged file gets this mtime (2000-01-01 UTC).
FIXED_MTIME = 946684800
#: Staged folders of a function not used for this long are removed by the next staging.
STALE_AFTER_S = 3600

#: The Lambda platform the layer is installed for: CPython 3.11 on x86_64 Amazon Linux 2023.
LAYER_PYTHON_VERSION = "3.11"
LAYER_PIP_PLATFORM = (
    "--platform",
    "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--python-version",
    LAYER_PYTHON_VERSION,
    "--implementation",
    "cp",
)
LAYER_DIR = BUILD_DIR / "powertools-layer"
#: Written next to (never inside) the layer folder, which is zipped whole.
LAYER_STAMP = BUILD_DIR / "powertools-layer.json"
#: Packages the Lambda runtime already provides; shipping them in the layer would shadow the runtime's.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


class PackagingError(RuntimeError):
    """A function folder or the layer cannot be packaged; the message says what to fix."""


@dataclass(frozen=True)
class StagedPackage:
    """A staged folder ready to be zipped: where it is, its digest, its files and their total size."""

    name: str
    path: Path
    digest: str
    files: tuple[str, ...]
    size: int


def _excluded(name: str, is_dir: bool) -> bool:
    if is_dir:
        return name in EXCLUDED_DIRS or name.startswith(".")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED_FILES)


def _walk(root: Path, prefix: str) -> Iterable[tuple[str, Path]]:
    """``(path in the zip, source file)`` of every shipped file under ``root``, sorted; symlinks refused."""
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.is_symlink():
            raise PackagingError(f"{entry}: symlinks are not packaged (they may point outside the function)")
        if _excluded(entry.name, entry.is_dir()):
            continue
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, f"{relative}/")
        elif entry.is_file():
            yield relative, entry


def function_sources(function: str, lambdas_dir: Path = LAMBDAS_DIR) -> list[tuple[str, Path]]:
    """What ``function``'s zip holds: its folder's files at the root, plus ``payments_common/``."""
    folder = lambdas_dir / function
    if not (folder / "handler.py").is_file():
        raise PackagingError(f"{folder}/handler.py is missing: every function exposes handler(event, context)")
    shared = lambdas_dir / SHARED_PACKAGE
    if not (shared / "__init__.py").is_file():
        raise PackagingError(f"{shared}/__init__.py is missing: the shared package is shipped with every function")
    own = list(_walk(folder, ""))
    clash = [path for path, _ in own if path.split("/")[0] == SHARED_PACKAGE]
    if clash:
        raise PackagingError(f"{folder} holds {clash[0]}, which would shadow the shared package {SHARED_PACKAGE}")
    return sorted(own + list(_walk(shared, f"{SHARED_PACKAGE}/")))


def content_digest(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 (hex) over each file's path and bytes, in path order.

    It changes when a file is added, removed, renamed or edited, and only then.
    """
    digest = hashlib.sha256()
    for relative, source in sorted(files):
        data = source.read_bytes()
        digest.update(relative.encode())
        digest.update(b"\0")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def tree_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under ``root`` as ``(relative posix path, path)``, sorted."""
    return sorted((path.relative_to(root).as_posix(), path) for path in root.rglob("*") if path.is_file())


def normalize_tree(root: Path) -> None:
    """Fixed modes and mtimes under ``root`` (not ``root`` itself), so the zip of it is reproducible."""
    for path in sorted(root.rglob("*"), reverse=True):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)


def _replace_atomically(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; if another process got there first, keep theirs (same content)."""
    try:
        tmp.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _prune_stale(parent: Path, keep: Path) -> None:
    """Remove staged folders of older code unused for :data:`STALE_AFTER_S` (a concurrent synth may use one)."""
    now = time.time()
    for sibling in parent.iterdir():
        if sibling != keep and sibling.is_dir() and now - sibling.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(sibling, ignore_errors=True)


def stage_function(function: str, lambdas_dir: Path = LAMBDAS_DIR, build_dir: Path = BUILD_DIR) -> StagedPackage:
    """Stage ``function`` into ``build/lambda/<function>/<digest>/`` (reused when the code is unchanged)."""
    sources = function_sources(function, lambdas_dir)
    digest = content_digest(sources)
    parent = build_dir / "lambda" / function
    target = parent / digest
    parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and content_digest(tree_files(target)) != digest:
        shutil.rmtree(target)  # edited by hand: rebuild it
    if not target.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
        for relative, source in sources:
            destination = tmp / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        normalize_tree(tmp)
        tmp.chmod(0o755)
        _replace_atomically(tmp, target)
    os.utime(target)  # marks it as in use for _prune_stale
    _prune_stale(parent, target)
    return StagedPackage(
        name=function,
        path=target,
        digest=digest,
        files=tuple(relative for relative, _ in sources),
        size=sum(source.stat().st_size for _, source in sources),
    )


def zip_size(folder: Path) -> int:
    """Size of ``folder`` zipped with deflate level 9 (what cdktf's ARCHIVE asset uses), in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zipped:
            for relative, path in tree_files(folder):
                zipped.write(path, relative)
        return archive.stat().st_size


# ---------------------------------------------------------------- Powertools layer


@dataclass(frozen=True)
class LayerBuild:
    """The built layer folder (holding ``python/``), its content digest, and whether this run built it."""

    path: Path
    digest: str
    inputs: str
    files: int
    size: int
    built: bool


def layer_inputs_digest(requirements: Path = LAMBDA_REQUIREMENTS, constraints: Path = CONSTRAINTS) -> str:
    """SHA-256 over what decides the layer's content: requirements, constraints and the target platform."""
    digest = hashlib.sha256()
    recipe = " ".join((*LAYER_PIP_PLATFORM, "compile=unchecked-hash")).encode()
    for part in (requirements.read_bytes(), constraints.read_bytes(), recipe):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _read_stamp(stamp: Path) -> dict | None:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _intact(layer_dir: Path, record: dict) -> bool:
    """Whether ``layer_dir`` holds exactly what the stamp recorded (hashing it takes well under a second)."""
    return (layer_dir / "python").is_dir() and content_digest(tree_files(layer_dir)) == record.get("digest")


Runner = Callable[..., subprocess.CompletedProcess]


def pip_install_command(requirements: Path, constraints: Path, target: Path) -> list[str]:
    """The pip command that installs the layer's packages for the Lambda platform into ``target``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # compiled below, without mtimes (compile_layer)
        "-r",
        str(requirements),
        "-c",
        str(constraints),
        *LAYER_PIP_PLATFORM,
        "--target",
        str(target),
    ]


def compile_layer(root: Path, runner: Runner = subprocess.run) -> None:
    """Ship bytecode: /opt is read-only in Lambda, so without it every cold start compiles the layer again.

    ``unchecked-hash`` pycs (PEP 552) hold no source mtime, and a fixed hash seed keeps the
    order of set constants, and ``-d /opt/python`` (where Lambda mounts the layer) replaces the
    build folder in the file names the pycs embed, so two builds of the same inputs give the same bytes.
    """
    done = runner(
        [
            *(sys.executable, "-m", "compileall", "-q", "-j", "1"),
            *("--invalidation-mode", "unchecked-hash", "-d", "/opt/python", str(root)),
        ],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PackagingError(f"could not compile the layer in {root}:\n{done.stdout}\n{done.stderr}")


def build_layer(
    requirements: Path = LAMBDA_REQUIREMENTS,
    constraints: Path = CONSTRAINTS,
    layer_dir: Path = LAYER_DIR,
    stamp: Path = LAYER_STAMP,
    *,
    force: bool = False,
    runner: Runner = subprocess.run,
) -> LayerBuild:
    """Install the layer unless it was built from the same inputs; atomic, so a failed build leaves the old one."""
    inputs = layer_inputs_digest(requirements, constraints)
    previous = _read_stamp(stamp)
    if not force and previous and previous.get("inputs") == inputs and _intact(layer_dir, previous):
        return LayerBuild(layer_dir, previous["digest"], inputs, previous["files"], previous["size"], built=False)
    layer_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".powertools-layer-", dir=layer_dir.parent))
    try:
        done = runner(
            pip_install_command(requirements, constraints, tmp / "python"), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise PackagingError(f"pip could not build the layer:\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(tmp / "python" / "bin", ignore_errors=True)  # console scripts: not importable, not needed
        shadowing = [name for name in RUNTIME_PROVIDED if (tmp / "python" / name).exists()]
        if shadowing:
            raise PackagingError(
                f"the layer would ship {', '.join(shadowing)}, which the Lambda runtime provides: "
                f"drop them from {requirements.name}"
            )
        compile_layer(tmp / "python")
        normalize_tree(tmp)
        tmp.chmod(0o755)
        files = tree_files(tmp)
        digest = content_digest(files)
        record = {
            "inputs": inputs,
            "digest": digest,
            "files": len(files),
            "size": sum(p.stat().st_size for _, p in files),
        }
        old = layer_dir.with_name(f".{layer_dir.name}-old-{os.getpid()}")
        if layer_dir.exists():
            layer_dir.rename(old)
        tmp.rename(layer_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stamp_tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}")
    stamp_tmp.write_text(json.dumps(record, indent=2) + "\n")
    stamp_tmp.replace(stamp)
    return LayerBuild(layer_dir, record["digest"], inputs, record["files"], record["size"], built=True)


def built_layer(
    requirements: Path = LAMBDA_REQUIREMENTS,
    constraints: Path = CONSTRAINTS,
    layer_dir: Path = LAYER_DIR,
    stamp: Path = LAYER_STAMP,
) -> LayerBuild:
    """The layer the synth packages.

    Raises :class:`PackagingError` telling to run ``make layer`` when the layer is missing or was
    built from other requirements.
    """
    record = _read_stamp(stamp)
    if record is None or not (layer_dir / "python").is_dir():
        raise PackagingError(f"the Powertools layer is not built ({layer_dir} is missing): run `make layer`")
    if record.get("inputs") != layer_inputs_digest(requirements, constraints):
        raise PackagingError(
            f"the Powertools layer in {layer_dir} was built from other requirements or constraints: run `make layer`"
        )
    if not _intact(layer_dir, record):
        raise PackagingError(f"the Powertools layer in {layer_dir} was changed after it was built: run `make layer`")
    return LayerBuild(layer_dir, record["digest"], record["inputs"], record["files"], record["size"], built=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``layer [--force]`` or ``stage``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["layer", "stage"])
    parser.add_argument("--force", action="store_true", help="rebuild the layer even when it is up to date")
    args = parser.parse_args(argv)
    try:
        if args.command == "layer":
            started = time.monotonic()
            layer = build_layer(force=args.force)
            state = "built" if layer.built else "up to date, not rebuilt"
            print(
                f"powertools layer {state}: {layer.path} ({layer.files} files, {layer.size / 1e6:.1f} MB unzipped, "
                f"{time.monotonic() - started:.1f} s)"
            )
            return 0
        for function in FUNCTIONS:
            staged = stage_function(function)
            print(
                f"{function}: {len(staged.files)} files, {staged.size} B, zipped {zip_size(staged.path)} B, "
                f"{staged.path.relative_to(REPO_ROOT)}"
            )
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
