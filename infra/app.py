"""CDK app entry point: ``python -m infra.app`` synthesizes the stack into ``infra/cdk.out/``.

The npm CDK CLI runs the same module through ``cdk.json`` and passes its output folder in
``CDK_OUTDIR``; without the CLI the default is ``infra/cdk.out``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from infra.stack import DEFAULT_OUTDIR, build_app

log = logging.getLogger(__name__)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    outdir = Path(os.environ.get("CDK_OUTDIR") or DEFAULT_OUTDIR)
    app, stack = build_app(outdir)
    assembly = app.synth()
    log.info("synthesized %s into %s", stack.stack_name, assembly.directory)


if __name__ == "__main__":
    main()
