"""--help: the options under headings, the examples, the exit codes and where the
config file is; 80 columns. Imported only when help is shown."""

from __future__ import annotations

from typing import Any

import click

from gpt_pipe.options import groups

# Each option's heading, in the order --help shows them (and gpt-pipe(1) follows).
GROUPS: dict[str, tuple[str, ...]] = groups()

EXAMPLES = """\b
Examples:
  echo "Hello" | gpt-pipe
  git diff | gpt-pipe -s "Write a commit message for this diff"
  gpt-pipe "Summarise this log" < /var/log/syslog
  gpt-pipe --jsonl "Tell me a joke" > chunks.jsonl
  answer=$(gpt-pipe --full "One word for happy") || echo "failed: $?"
  while read -r q; do gpt-pipe --no-stdin "$q"; done < questions.txt
  gpt-pipe --json "Hi" | jq -r '.choices[0].message.content'
  gpt-pipe -c "And in French?"            # -c: --continue
  gpt-pipe --profile local "Hello"
  gpt-pipe --batch tickets.jsonl -P 16 --output labels.jsonl --resume
  gpt-pipe --replay chunks.jsonl --usage
  gpt-pipe -- "-v means verbose; explain"
  gpt-pipe --full --schema 'invoice, total number' < mail.txt || echo $?

\b
Events: an event's data decides what it is, never its name: a JSON object
is a chunk, [DONE] ends the stream, event: error is an error, the rest are
keep-alives. The API key never shows: a delta ending in s, sk or sk- is
written at once; only a tail matching more of the key waits for the next.

\b
Exit status: 0 answer complete, 2 usage, 3 truncated (length), 4 content
filter, 5 tool calls, 6 other finish reason, 7 stream cut off, 8 answer does
not match --schema, 65 bad input
or request, 69 service unavailable, 70 internal error, 74 cannot write, 75
try again later, 76 protocol error, 77 not authorised, 78 configuration
error, 130/143 interrupted, 141 reader closed stdout. See gpt-pipe(1)."""


def format_options(command: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The options under GROUPS' headings."""
    records = {"help" if "--help" in getattr(param, "opts", ()) else param.name: param.get_help_record(ctx)
               for param in command.get_params(ctx)}
    # One column width for every heading, so the descriptions line up down the page.
    width = min(26, max(len(record[0]) for record in records.values() if record))
    for heading, names in GROUPS.items():
        rows = [(record[0].ljust(width), record[1]) for name in names if (record := records.get(name))]
        if rows:
            with formatter.section(heading):
                formatter.write_dl(rows, col_max=width)


def format_epilog(formatter: click.HelpFormatter) -> None:
    """The examples, the exit codes, and the config file's location."""
    from gpt_pipe.paths import config_path

    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(EXAMPLES)
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(f"\b\nConfig file, with [profile.NAME] tables for --profile:\n{config_path()}\n"
                             "(that is $XDG_CONFIG_HOME/gpt-pipe/config.toml, else ~/.config/...)")


def grouped_names() -> list[str]:
    return [name for names in GROUPS.values() for name in names]


def unused(params: list[Any]) -> list[str]:
    """Options no heading lists (a test keeps this empty)."""
    listed = set(grouped_names())
    return [p.name for p in params if isinstance(p, click.Option) and p.name not in listed]
