"""``python -m gpt_pipe`` and the ``gpt-pipe`` console script (``entry``)."""

import gc
import os
import sys


def entry() -> None:
    """Run gpt-pipe, flush, and leave without the interpreter's slow teardown."""
    # While requests (and click, when it is needed) import, the cyclic GC runs again and again over objects
    # that all live until exit: a quarter of the start-up time. It is switched back on,
    # with those objects frozen out of its way, before the request (process.start_streaming).
    gc.disable()
    from gpt_pipe import early

    early.start(sys.argv[1:])  # DNS, TCP and TLS go on in a thread while requests imports
    from gpt_pipe.launch import main
    from gpt_pipe.process import finish

    os._exit(finish(main()))


if __name__ == "__main__":
    entry()
