"""Shell completion's data: the model IDs --list-models saw last, kept for --model."""

from __future__ import annotations

import os
import re
from typing import Any

# What a shell inserts without quoting: a model ID with anything else (`;`, `$`, spaces)
# is left out of completion rather than trusted to a server.
_PLAIN = r"[A-Za-z0-9._:/@+-]+"


def models_cache_path() -> str:
    """$XDG_CACHE_HOME/gpt-pipe/models, else ~/.cache/gpt-pipe/models."""
    from gpt_pipe.paths import cache_dir

    return os.path.join(cache_dir(), "models")


def cache_models(models: list[str]) -> None:
    """Keep the list for completing --model; a cache that cannot be written, or a cache
    directory others could plant files in, is no error: nothing is kept."""
    from gpt_pipe.exitcodes import GptPipeError
    from gpt_pipe.files import private_dir, write_replace

    path = models_cache_path()
    try:
        private_dir(os.path.dirname(path), "cache directory")
        write_replace(path, "".join(f"{model}\n" for model in models).encode("utf-8", "replace"))
    except (OSError, GptPipeError):
        pass


def cached_models(incomplete: str) -> list[Any]:
    """The completion items for --model (click calls this only while completing)."""
    from click.shell_completion import CompletionItem  # 3 ms to import: only when completing

    try:
        with open(models_cache_path(), encoding="utf-8") as f:
            models = f.read(1 << 20).split()  # a cache is small; a huge one is not read whole
    except OSError:
        return []
    return [CompletionItem(m) for m in models if m.startswith(incomplete) and re.fullmatch(_PLAIN, m)]
