"""Readers: one module per source layout, each mapping its names onto the canonical schema."""
from recsys.core.data.readers.base import ReadResult
from recsys.core.data.readers.detect import SUPPORTED_FORMATS, detect_format, read_source

__all__ = ["ReadResult", "SUPPORTED_FORMATS", "detect_format", "read_source"]
