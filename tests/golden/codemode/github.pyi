# servers/github.pyi — call as github.<tool>(...)
from typing import Any, Literal

def create_issue(owner: str, repo: str, title: str, assignees: list[dict[str, Any]] = None, body: str | None = None, class_: str = None, labels: list[str] = None) -> Any:
    """Create a new issue in a GitHub repository"""

def search_code(q: str, filters: dict[str, Any] = None, per_page: int | None = None) -> Any:
    """Search code across repositories."""
