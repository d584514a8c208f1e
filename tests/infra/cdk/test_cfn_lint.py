"""The synthesized template is clean for cfn-lint (what CI runs after ``make synth``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.mark.slow  # runs cfn-lint in a subprocess
def test_synthesized_template_passes_cfn_lint(template_file):
    result = subprocess.run(
        [str(CFN_LINT), str(template_file)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
