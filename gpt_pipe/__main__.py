import sys

from gpt_pipe.cli import main

sys.exit(main())
