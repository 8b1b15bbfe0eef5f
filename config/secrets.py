"""The embedded default's secret key: generated once, kept in a file only its owner can read."""

import os
import tempfile
from pathlib import Path

from django.core.management.utils import get_random_secret_key

OWNER_ONLY = 0o600


def embedded_secret_key(path: Path) -> str:
    """The key stored at `path`, created on first use; the file is readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written in full to a private temporary file (mkstemp: mode 0600), then linked into place, which fails if
        # the key exists: of two processes starting at once, both end up with the one key that won.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(get_random_secret_key() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    os.chmod(path, OWNER_ONLY)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it and a new secret key is generated on the next start.")
    return key
