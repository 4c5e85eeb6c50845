"""Code samples from README.md, run as a reader would copy them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verify() -> Any:
    """The Python `verify` of README's "Verifying calls on your endpoint"."""
    text = README.read_text()
    section = text[text.index("### Verifying calls on your endpoint") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "README lost its Python verifier"
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # noqa: S102 - the README's own sample, run as documented
    return namespace["verify"]
