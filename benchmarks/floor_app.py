"""The synth floor: import the provider submodules the app uses, synthesize one empty stack.

What ``python main.py`` cannot do faster than: the same imports (and so the same jsii
assemblies loaded into Node) with nothing built.
"""

from __future__ import annotations

import ast
import importlib
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def provider_modules() -> list[str]:
    """Every ``cdktf_cdktf_provider_aws.<submodule>`` that layers/*.py imports."""
    modules: set[str] = set()
    for path in (REPO_ROOT / "layers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cdktf_cdktf_provider_aws."):
                modules.add(node.module)
    return sorted(modules)


def main() -> int:
    """Import, then synthesize an empty stack with one provider."""
    for module in provider_modules():
        importlib.import_module(module)
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    with tempfile.TemporaryDirectory() as outdir:
        app = App(outdir=outdir)
        stack = TerraformStack(app, "floor")
        AwsProvider(stack, "aws", region="us-east-1")
        app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
