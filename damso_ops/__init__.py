"""damso: from these commits to these containers, healthy, on AWS."""

__version__ = "0.1.0"
