"""contentgen: personalized loyalty emails, written by an LLM, gated before they leave."""

__version__ = "0.1.0"
