"""The installed colorquant version, read from package metadata (pyproject.toml is the source)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("colorquant")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0.0.0+source"
