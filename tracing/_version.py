from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# The distribution name, not the import name (`pip install aiotracing`, `import tracing`).
DISTRIBUTION = "aiotracing"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
