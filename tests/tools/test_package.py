"""Lambda packaging: what each zip holds, its size, a content hash that moves only with the code, the layer."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from tools.package import (
    FIXED_MTIME,
    FUNCTIONS,
    LAMBDAS_DIR,
    SHARED_PACKAGE,
    STALE_AFTER_S,
    PackagingError,
    build_layer,
    built_layer,
    pip_install_command,
    stage_function,
    zip_size,
)

#: Lambda code is small; a zip near this size means something that is not code got in.
MAX_ZIP_BYTES = 1_000_000


def shipped_by_rule(folder: Path, prefix: str = "") -> set[str]:
    """The files a function ships, by the documented rule, walked independently of tools.package."""
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in {"tests", "__pycache__"} and not d.startswith(".")]
        for name in files:
            if name.endswith((".pyc", ".md")) or name.startswith(("test_", ".")) or name == "conftest.py":
                continue
            found.add(prefix + (Path(root) / name).relative_to(folder).as_posix())
    return found


@pytest.fixture
def lambdas(tmp_path: Path) -> Path:
    """A small lambdas/ tree of our own to change files in: every function plus the shared package."""
    root = tmp_path / "lambdas"
    for function in FUNCTIONS:
        (root / function).mkdir(parents=True)
        (root / function / "handler.py").write_text(f"def handler(event, context):\n    return {function!r}\n")
    (root / "payment_validation" / "rules").mkdir()
    (root / "payment_validation" / "rules" / "__init__.py").write_text("LIMIT = 10\n")
    (root / SHARED_PACKAGE).mkdir()
    (root / SHARED_PACKAGE / "__init__.py").write_text("")
    (root / SHARED_PACKAGE / "config.py").write_text("NAME = 'x'\n")
    (root / SHARED_PACKAGE / "currencies.json").write_text('{"EUR": 2}\n')
    (root / "requirements.txt").write_text("aws-lambda-powertools==3.37.0\n")
    return root


def test_the_small_tree_stages_like_a_real_one(lambdas: Path, tmp_path: Path) -> None:
    staged = stage_function("payment_validation", lambdas, tmp_path / "build")
    assert staged.files == (
        "handler.py",
        f"{SHARED_PACKAGE}/__init__.py",
        f"{SHARED_PACKAGE}/config.py",
        f"{SHARED_PACKAGE}/currencies.json",
        "rules/__init__.py",
    )


# ------------------------------------------------------------------ the real functions


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_zip_holds_its_own_code_and_the_shared_package_only(function: str, tmp_path: Path) -> None:
    staged = stage_function(function, build_dir=tmp_path)
    zipped = tmp_path / "archive.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for relative in staged.files:
            archive.write(staged.path / relative, relative)
    size = zipped.stat().st_size
    print(f"{function}: {len(staged.files)} files, {staged.size} B unzipped, {size} B zipped")
    expected = shipped_by_rule(LAMBDAS_DIR / function) | shipped_by_rule(
        LAMBDAS_DIR / SHARED_PACKAGE, f"{SHARED_PACKAGE}/"
    )
    assert set(staged.files) == expected
    assert "handler.py" in staged.files
    assert f"{SHARED_PACKAGE}/__init__.py" in staged.files
    for relative in staged.files:
        parts = relative.split("/")
        assert not {"tests", "__pycache__", ".pytest_cache"} & set(parts), relative
        assert not relative.endswith(".pyc"), relative
        assert len(parts) == 1 or parts[0] == SHARED_PACKAGE or (LAMBDAS_DIR / function / parts[0]).is_dir()
    staged_files = sorted(p.relative_to(staged.path).as_posix() for p in staged.path.rglob("*") if p.is_file())
    assert staged_files == sorted(staged.files), "the staged folder holds exactly the listed files"
    assert size < MAX_ZIP_BYTES
    assert zip_size(staged.path) == size


# ------------------------------------------------------------------ staging and the content hash


def test_staging_twice_gives_the_same_folder_and_hash(lambdas: Path, tmp_path: Path) -> None:
    first = stage_function("payment_validation", lambdas, tmp_path / "build")
    second = stage_function("payment_validation", lambdas, tmp_path / "build")
    assert (first.digest, first.path) == (second.digest, second.path)
    assert len(first.digest) == 64


def test_staged_files_have_fixed_modes_and_mtimes_so_the_zip_is_reproducible(lambdas: Path, tmp_path: Path) -> None:
    staged = stage_function("payment_validation", lambdas, tmp_path / "build")
    for path in staged.path.rglob("*"):
        assert path.stat().st_mtime == FIXED_MTIME, path
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


@pytest.mark.parametrize(
    "change",
    ["edit handler", "edit shared", "add module", "rename module", "remove module"],
)
def test_hash_changes_when_the_code_changes(change: str, lambdas: Path, tmp_path: Path) -> None:
    folder = lambdas / "payment_validation"
    (folder / "extra_module.py").write_text("VALUE = 1\n")
    before = stage_function("payment_validation", lambdas, tmp_path / "build")
    if change == "edit handler":
        (folder / "handler.py").write_text((folder / "handler.py").read_text() + "\n# changed\n")
    elif change == "edit shared":
        shared = lambdas / SHARED_PACKAGE / "__init__.py"
        shared.write_text(shared.read_text() + "\n# changed\n")
    elif change == "add module":
        (folder / "another_module.py").write_text("VALUE = 2\n")
    elif change == "rename module":
        (folder / "extra_module.py").rename(folder / "renamed_module.py")
    else:
        (folder / "extra_module.py").unlink()
    after = stage_function("payment_validation", lambdas, tmp_path / "build")
    assert after.digest != before.digest
    assert after.path != before.path


def test_hash_ignores_tests_caches_and_docs(lambdas: Path, tmp_path: Path) -> None:
    before = stage_function("payment_processing", lambdas, tmp_path / "build")
    folder = lambdas / "payment_processing"
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_handler.py").write_text("def test(): pass\n")
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (folder / ".pytest_cache").mkdir(exist_ok=True)
    (folder / "test_local.py").write_text("def test(): pass\n")
    (folder / "conftest.py").write_text("\n")
    (folder / "NOTES.md").write_text("notes\n")
    (lambdas / SHARED_PACKAGE / "__pycache__").mkdir(exist_ok=True)
    (lambdas / SHARED_PACKAGE / "__pycache__" / "x.pyc").write_bytes(b"\0")
    after = stage_function("payment_processing", lambdas, tmp_path / "build")
    assert after.digest == before.digest
    assert after.files == before.files


def test_a_function_without_handler_is_refused(lambdas: Path, tmp_path: Path) -> None:
    (lambdas / "health" / "handler.py").unlink()
    with pytest.raises(PackagingError, match=r"health/handler\.py is missing"):
        stage_function("health", lambdas, tmp_path / "build")


def test_symlinks_are_refused(lambdas: Path, tmp_path: Path) -> None:
    (lambdas / "health" / "secrets.py").symlink_to("/etc/hostname")
    with pytest.raises(PackagingError, match="symlinks"):
        stage_function("health", lambdas, tmp_path / "build")


def test_a_function_cannot_shadow_the_shared_package(lambdas: Path, tmp_path: Path) -> None:
    (lambdas / "health" / SHARED_PACKAGE).mkdir()
    (lambdas / "health" / SHARED_PACKAGE / "__init__.py").write_text("\n")
    with pytest.raises(PackagingError, match="shadow"):
        stage_function("health", lambdas, tmp_path / "build")


def test_staged_folders_of_old_code_are_pruned_recent_ones_kept(lambdas: Path, tmp_path: Path) -> None:
    parent = tmp_path / "build" / "lambda" / "health"
    old, recent = parent / "old-digest", parent / "recent-digest"
    for folder in (old, recent):
        folder.mkdir(parents=True)
    long_ago = old.stat().st_mtime - STALE_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    staged = stage_function("health", lambdas, tmp_path / "build")
    assert not old.exists()
    assert recent.exists()
    assert staged.path.exists()


def test_a_staged_folder_edited_by_hand_is_rebuilt(lambdas: Path, tmp_path: Path) -> None:
    staged = stage_function("health", lambdas, tmp_path / "build")
    (staged.path / "handler.py").write_text("tampered\n")
    again = stage_function("health", lambdas, tmp_path / "build")
    assert (again.path / "handler.py").read_bytes() == (lambdas / "health" / "handler.py").read_bytes()


# ------------------------------------------------------------------ the Powertools layer


class FakePip:
    """Stands in for pip: records calls, writes a package into --target (or fails)."""

    def __init__(self, returncode: int = 0, packages: tuple[str, ...] = ("aws_lambda_powertools",)) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode
        self.packages = packages

    def __call__(self, command: list[str], **_: object) -> subprocess.CompletedProcess:
        self.calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for package in self.packages:
            (target / package).mkdir(parents=True, exist_ok=True)
            (target / package / "__init__.py").write_text(f"# {package} {len(self.calls)}\n")
        (target / "bin").mkdir(exist_ok=True)
        (target / "bin" / "script").write_text("#!/bin/sh\n")
        return subprocess.CompletedProcess(command, self.returncode, "", "boom" if self.returncode else "")


@pytest.fixture
def layer_inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "requirements.txt").write_text("aws-lambda-powertools==3.37.0\n")
    (tmp_path / "constraints.txt").write_text("aws_lambda_powertools==3.37.0\n")
    return {
        "requirements": tmp_path / "requirements.txt",
        "constraints": tmp_path / "constraints.txt",
        "layer_dir": tmp_path / "build" / "powertools-layer",
        "stamp": tmp_path / "build" / "powertools-layer.json",
    }


def test_layer_is_built_once_and_skipped_while_its_inputs_are_unchanged(layer_inputs: dict[str, Path]) -> None:
    pip = FakePip()
    first = build_layer(**layer_inputs, runner=pip)
    second = build_layer(**layer_inputs, runner=pip)
    assert (first.built, second.built) == (True, False)
    assert len(pip.calls) == 1
    assert first.digest == second.digest
    assert (layer_inputs["layer_dir"] / "python" / "aws_lambda_powertools" / "__init__.py").is_file()
    assert not (layer_inputs["layer_dir"] / "python" / "bin").exists()
    assert built_layer(**layer_inputs).digest == first.digest


def test_layer_is_rebuilt_when_requirements_change(layer_inputs: dict[str, Path]) -> None:
    pip = FakePip()
    build_layer(**layer_inputs, runner=pip)
    layer_inputs["requirements"].write_text("aws-lambda-powertools==3.37.0\npydantic==2.14.3\n")
    with pytest.raises(PackagingError, match="make layer"):
        built_layer(**layer_inputs)
    assert build_layer(**layer_inputs, runner=pip).built
    assert len(pip.calls) == 2


def test_a_layer_changed_after_its_build_is_refused_and_rebuilt(layer_inputs: dict[str, Path]) -> None:
    pip = FakePip()
    build_layer(**layer_inputs, runner=pip)
    (layer_inputs["layer_dir"] / "python" / "stray.py").write_text("x = 1\n")
    with pytest.raises(PackagingError, match="changed after it was built"):
        built_layer(**layer_inputs)
    assert build_layer(**layer_inputs, runner=pip).built
    assert not (layer_inputs["layer_dir"] / "python" / "stray.py").exists()


def test_missing_layer_tells_to_run_make_layer(layer_inputs: dict[str, Path]) -> None:
    with pytest.raises(PackagingError, match="run `make layer`"):
        built_layer(**layer_inputs)


def test_failed_pip_keeps_the_previous_layer(layer_inputs: dict[str, Path]) -> None:
    good = build_layer(**layer_inputs, runner=FakePip())
    with pytest.raises(PackagingError, match="boom"):
        build_layer(**layer_inputs, runner=FakePip(returncode=1), force=True)
    assert built_layer(**layer_inputs).digest == good.digest
    leftovers = [p.name for p in layer_inputs["layer_dir"].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_layer_refuses_packages_the_runtime_provides(layer_inputs: dict[str, Path]) -> None:
    with pytest.raises(PackagingError, match="boto3"):
        build_layer(**layer_inputs, runner=FakePip(packages=("aws_lambda_powertools", "boto3")))


def test_pip_installs_binary_wheels_for_the_lambda_platform_with_the_constraints(tmp_path: Path) -> None:
    command = pip_install_command(tmp_path / "r.txt", tmp_path / "c.txt", tmp_path / "target")
    assert command[command.index("-c") + 1] == str(tmp_path / "c.txt")
    assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--implementation") + 1] == "cp"
    assert "--only-binary=:all:" in command


def test_the_built_layer_holds_powertools_and_pydantic_for_python_3_11_x86_64() -> None:
    layer = built_layer()
    python = layer.path / "python"
    assert (python / "aws_lambda_powertools").is_dir()
    assert list((python / "pydantic_core").glob("*.cpython-311-x86_64-linux-gnu.so"))
    assert not (python / "boto3").exists()
    print(f"powertools layer: {layer.files} files, {layer.size} B unzipped")


def test_the_built_layer_ships_unchecked_hash_bytecode_for_every_module() -> None:
    # /opt is read-only in Lambda: without shipped bytecode every cold start compiles the layer.
    python = built_layer().path / "python"
    sources = [p for p in python.rglob("*.py") if "__pycache__" not in p.parts]
    assert sources
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
        assert pyc.is_file(), f"no bytecode for {source.relative_to(python)}"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.relative_to(python)}: flags {flags:#b}, want unchecked-hash (PEP 552)"
