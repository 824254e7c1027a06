# servers/filesystem.pyi — call as filesystem.<tool>(...)
from typing import Any, Literal

def read_file(path: str, head: int = None) -> Any:
    """Read the complete contents of a file from the file system."""

def write_file(content: str, path: str, mode: Literal["overwrite", "append"] = None) -> Any:
    """Create a new file or overwrite an existing one."""

def list() -> Any:
    ...
