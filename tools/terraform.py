"""Run terraform over the synthesized stacks, offline when a provider mirror exists.

``python -m tools.terraform validate`` runs ``terraform init -backend=false`` and
``terraform validate`` in every stack of ``cdktf.out``, in deploy order.

Provider source: ``$TF_PLUGIN_MIRROR`` when set (a folder holding
``registry.terraform.io/hashicorp/aws``), else the first usual mirror folder found,
else the public registry. The chosen setting is written to a Terraform CLI config
(``.terraform.d/cli.tfrc``) and passed as ``TF_CLI_CONFIG_FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from layers.config import BOOTSTRAP, LAYER_ORDER, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTDIR = REPO_ROOT / "cdktf.out"
CLI_CONFIG = REPO_ROOT / ".terraform.d" / "cli.tfrc"
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
#: Where provider mirrors usually live, searched when TF_PLUGIN_MIRROR is unset.
USUAL_MIRRORS = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)
#: One terraform call may not take longer than this: a hang fails fast.
TERRAFORM_TIMEOUT_S = 600


class TerraformError(RuntimeError):
    """A terraform call failed; the message holds its output."""


def find_mirror(environ: Mapping[str, str] | None = None) -> Path | None:
    """The provider mirror to use, or None for the public registry."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("TF_PLUGIN_MIRROR")
    if explicit:
        path = Path(explicit)
        if not (path / AWS_PROVIDER).is_dir():
            raise TerraformError(f"TF_PLUGIN_MIRROR={explicit} holds no {AWS_PROVIDER} folder")
        return path
    return next((path for path in USUAL_MIRRORS if (path / AWS_PROVIDER).is_dir()), None)


def cli_config_text(mirror: Path | None) -> str:
    """A Terraform CLI config that installs the aws provider from ``mirror`` (or the registry)."""
    if mirror is None:
        return "provider_installation {\n  direct {}\n}\n"
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{AWS_PROVIDER}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{AWS_PROVIDER}"]\n  }}\n'
        "}\n"
    )


def terraform_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for terraform: our CLI config, no prompts, no telemetry."""
    env = dict(os.environ if environ is None else environ)
    CLI_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    text = cli_config_text(find_mirror(env))
    if not CLI_CONFIG.exists() or CLI_CONFIG.read_text() != text:
        CLI_CONFIG.write_text(text)
    env.update({"TF_CLI_CONFIG_FILE": str(CLI_CONFIG), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    env.setdefault("TF_INPUT", "0")
    return env


def terraform_binary() -> str:
    """Path of terraform; a clear error when it is missing (tests fail rather than skip)."""
    binary = shutil.which("terraform")
    if binary is None:
        raise TerraformError("terraform is not on PATH: install Terraform >= 1.6 (see README, Prerequisites)")
    return binary


def run(args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S) -> str:
    """Run one terraform command; raise :class:`TerraformError` with its output when it fails."""
    try:
        done = subprocess.run(
            [terraform_binary(), *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise TerraformError(f"terraform {' '.join(args)} in {cwd.name} timed out after {timeout} s") from exc
    if done.returncode != 0:
        raise TerraformError(f"terraform {' '.join(args)} in {cwd.name} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def stacks_in_order(outdir: Path = OUTDIR, regions: Sequence[str] | None = None) -> list[str]:
    """Deploy order: bootstrap, then layer by layer (global stack first, then the regions, primary first).

    Raises :class:`TerraformError` when a stack depends on one that comes later (a later layer, or a cycle).
    """
    manifest = json.loads((outdir / "manifest.json").read_text())
    deps = {name: list(stack.get("dependencies", [])) for name, stack in manifest["stacks"].items()}
    regions = list(load_config().regions if regions is None else regions)

    def position(name: str) -> tuple[int, int]:
        if name == BOOTSTRAP:
            return (-1, 0)
        layer, _, where = name.partition("-")
        if layer not in LAYER_ORDER:
            raise TerraformError(f"stack {name} belongs to no known layer {LAYER_ORDER}")
        return (
            LAYER_ORDER.index(layer),
            -1 if where == "global" else regions.index(where) if where in regions else len(regions),
        )

    ordered = sorted(deps, key=position)
    for index, name in enumerate(ordered):
        late = [dep for dep in deps[name] if dep not in ordered[:index]]
        if late:
            raise TerraformError(f"stack {name} depends on {', '.join(late)}, which deploy after it")
    return ordered


def validate(outdir: Path = OUTDIR) -> dict[str, dict]:
    """``terraform init -backend=false`` and ``validate`` in every stack; return each stack's result."""
    env = terraform_env()
    results = {}
    for name in stacks_in_order(outdir):
        started = time.monotonic()
        stack_dir = outdir / "stacks" / name
        run(["init", "-backend=false", "-input=false", "-no-color"], stack_dir, env)
        result = json.loads(run(["validate", "-json", "-no-color"], stack_dir, env))
        results[name] = result
        status = "valid" if result["valid"] else "INVALID"
        print(f"{name}: {status} ({time.monotonic() - started:.1f} s)", flush=True)
    return results


# ------------------------------------------------------------------ deploy helpers (tools/deploy.py)


def run_json(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S, log: Path | None = None
) -> list[dict]:
    """Run ``terraform <args> -json`` (machine-readable UI) and return its messages.

    terraform and its provider run in their own process group, killed as a whole on
    timeout, so a hung provider cannot outlive the call. The raw output goes to ``log``
    when given. Raises :class:`TerraformError` with the error diagnostics when it fails.
    """
    command = [terraform_binary(), *args, "-json"]
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            if log is not None:
                log.write_text(stdout + stderr)
            raise TerraformError(
                f"terraform {' '.join(args)} in {cwd.name} timed out after {timeout} s{_log_hint(log)}"
            ) from None
    if log is not None:
        log.write_text(stdout + stderr)
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0:
        errors = [
            _diagnostic(m["diagnostic"])
            for m in messages
            if m.get("type") == "diagnostic" and m["diagnostic"].get("severity") == "error"
        ]
        detail = "\n".join(errors) or stderr.strip() or stdout.strip()[-2000:]
        raise TerraformError(f"terraform {' '.join(args)} in {cwd.name} failed:\n{detail}{_log_hint(log)}")
    return messages


#: The lock terraform could not take, in its "Error acquiring the state lock" diagnostic.
_LOCK_INFO = re.compile(
    r"Lock Info:\s+ID:\s+(?P<id>[0-9a-f-]{36})\s.*?"
    r"Created:\s+(?P<created>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?P<fraction>\.\d+)?",
    re.DOTALL,
)


def own_lock(error: str, started: datetime.datetime) -> str | None:
    """The ID of the state lock a failed command could not take because it had taken it itself, or None.

    Seen on the emulator only: terraform's lock ``PutItem`` succeeds, the SDK sends it again, and the
    second one finds the lock of the first (created after the command ``started``, so it is nobody
    else's). Any other lock error, or a lock older than the command, is None: that lock is not ours.
    """
    found = _LOCK_INFO.search(error)
    if "Error acquiring the state lock" not in error or found is None:
        return None
    created = datetime.datetime.fromisoformat(found["created"]).replace(tzinfo=datetime.UTC)
    created += datetime.timedelta(seconds=float(found["fraction"] or 0))
    return found["id"] if created >= started else None


def force_unlock(stack_dir: Path, env: Mapping[str, str], lock_id: str, timeout: int = TERRAFORM_TIMEOUT_S) -> None:
    """``terraform force-unlock -force <lock_id>``."""
    run(["force-unlock", "-force", lock_id], stack_dir, env, timeout)


def _diagnostic(diagnostic: Mapping[str, Any]) -> str:
    """One error of ``-json`` output: where (resource address or configuration block), summary, detail."""
    where = diagnostic.get("address") or (diagnostic.get("snippet") or {}).get("context") or ""
    text = f"{diagnostic.get('summary', '')}: {diagnostic.get('detail', '')}".strip(": ")
    return f"[{where}] {text}" if where else text


def _log_hint(log: Path | None) -> str:
    return f"\n(full output: {log})" if log is not None else ""


def change_summary(messages: Sequence[dict]) -> dict[str, int]:
    """``{"add", "change", "import", "remove"}`` counts of the last change summary in ``-json`` output."""
    summaries = [m["changes"] for m in messages if m.get("type") == "change_summary"]
    return summaries[-1] if summaries else {"add": 0, "change": 0, "import": 0, "remove": 0}


def init(
    stack_dir: Path,
    env: Mapping[str, str],
    backend_config: Sequence[str] = (),
    timeout: int = TERRAFORM_TIMEOUT_S,
    log: Path | None = None,
) -> None:
    """``terraform init -reconfigure`` with ``-backend-config`` entries (``key=value`` or a file path)."""
    args = ["init", "-input=false", "-no-color", "-reconfigure"]
    args += [f"-backend-config={entry}" for entry in backend_config]
    output = run(args, stack_dir, env, timeout)
    if log is not None:
        log.write_text(output)


def apply(stack_dir: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S, log: Path | None = None) -> dict:
    """``terraform apply -auto-approve``; the change summary."""
    return change_summary(run_json(["apply", "-auto-approve", "-input=false"], stack_dir, env, timeout, log))


def destroy(
    stack_dir: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S, log: Path | None = None
) -> dict:
    """``terraform destroy -auto-approve``; the change summary."""
    return change_summary(run_json(["destroy", "-auto-approve", "-input=false"], stack_dir, env, timeout, log))


def plan(
    stack_dir: Path, env: Mapping[str, str], out: Path, timeout: int = TERRAFORM_TIMEOUT_S, log: Path | None = None
) -> dict:
    """``terraform plan -out <out>`` (a binary plan); the change summary."""
    return change_summary(run_json(["plan", "-input=false", f"-out={out}"], stack_dir, env, timeout, log))


def show_json(stack_dir: Path, env: Mapping[str, str], plan_file: Path, timeout: int = TERRAFORM_TIMEOUT_S) -> dict:
    """``terraform show -json <plan_file>``: the plan as JSON (resource_changes, replace_paths, ...)."""
    return json.loads(run(["show", "-json", "-no-color", str(plan_file)], stack_dir, env, timeout))


def outputs(stack_dir: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S) -> dict:
    """``terraform output -json``: name -> ``{"value", "type", "sensitive"}``."""
    return json.loads(run(["output", "-json", "-no-color"], stack_dir, env, timeout) or "{}")


def state_addresses(stack_dir: Path, env: Mapping[str, str], timeout: int = TERRAFORM_TIMEOUT_S) -> list[str]:
    """``terraform state list``: the addresses the stack's state holds (empty before the first apply)."""
    return run(["state", "list", "-no-color"], stack_dir, env, timeout).split()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``validate`` or ``cli-config`` (print the CLI config path to use)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["validate", "cli-config"])
    parser.add_argument("--outdir", type=Path, default=OUTDIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "cli-config":
            terraform_env()
            print(CLI_CONFIG)
            return 0
        results = validate(args.outdir)
    except TerraformError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    invalid = {name: r for name, r in results.items() if not r["valid"]}
    for name, result in invalid.items():
        for diag in result.get("diagnostics", []):
            print(f"{name}: {diag.get('severity')}: {diag.get('summary')} {diag.get('detail', '')}", file=sys.stderr)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
