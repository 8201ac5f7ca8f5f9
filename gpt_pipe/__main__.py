from gpt_pipe.cli import entry

entry()
