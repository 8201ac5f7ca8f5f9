"""gpt-pipe: a Unix pipe-friendly client for OpenAI-compatible chat completions."""

# Kept as a literal (not importlib.metadata) so that --version and the User-Agent
# cost nothing at start-up; setup.cfg reads it from here.
__version__ = "0.1.0"
