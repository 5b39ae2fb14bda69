"""Hutch: a self-hostable platform for running an AI-assistant business."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hutch")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
