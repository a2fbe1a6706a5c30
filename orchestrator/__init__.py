"""deathmath-orchestrate: benchmark many models on DeathMath with managed vLLM servers."""

__version__ = "0.1.0"
