"""The option table is the one declaration: click, the early pre-scan and the config file
all read it, convert the same values the same way and refuse the same ones, and the
pre-scan's tokeniser reads every command line as click does."""

from __future__ import annotations

import click
import pytest
from server import Reply, Server, sse_chunks

from gpt_pipe import argv as argv_
from gpt_pipe import config, options
from gpt_pipe.cli import command
from gpt_pipe.exitcodes import GptPipeError

EARLY = "the request went out on the connection set up during start-up"

# Sample values of each kind, as a command line would give them: some good, some not.
SAMPLES = {
    "text": ["x", "", "-5", "a=b"],
    "path": ["f.txt", "~/x", "-"],
    "optional": ["in.jsonl", "-"],
    "number": ["0.5", "-1", "1e3", "hot", "nan", "inf", ""],
    "seconds": ["2", "0.25", "0", "-1", "x", "nan"],
    "integer": ["1", "0", "-3", "256", "257", "1.5", "many", " 7 "],
    "size": ["4M", "512K", "1G", "4MiB", "2048", "100", "lots", "1.5M", "nanK"],
    "choice": ["response_format", "prompt", "json"],
    "keyvalue": ["top_k=5", "a=@file", "novalue", "=x", "messages=[]", "stream=false"],
    "rate": ["9/s", "540/min", "2000/h", "0/s", "-1/s", "9", "x/s", "9/fortnight", "nan/s"],
}

VALUED = [o for o in options.OPTIONS if not o.flag and o.dest not in options.EAGER]


def click_value(option: options.Option, value: str):
    """What click makes of ``value`` for this option, or the exception it raises."""
    try:
        ctx = command.make_context("gpt-pipe", [f"{option.name}={value}", "hi"], resilient_parsing=False)
    except click.UsageError as exc:
        return exc
    got = ctx.params[option.dest]
    return list(got) if option.multiple else got


def scan_value(option: options.Option, value: str):
    found = argv_.scan([f"{option.name}={value}", "hi"])
    return found.given[option.dest] if option.multiple and found.ok else found.last(option.dest) if found.ok else None


def config_value(option: options.Option, value: str):
    try:
        return config.convert(option, value, "config.toml", True)
    except GptPipeError as exc:
        return exc


@pytest.mark.parametrize("option", VALUED, ids=lambda o: o.name)
def test_click_the_pre_scan_and_the_config_file_agree_on_every_value(option):
    for value in SAMPLES[option.kind]:
        by_click, by_scan = click_value(option, value), scan_value(option, value)
        by_config = config_value(option, value)
        if isinstance(by_click, Exception):
            assert by_scan is None, (option.name, value, by_scan)
            assert isinstance(by_config, GptPipeError) and by_config.code == 78, (option.name, value)
        else:
            assert by_scan == by_click, (option.name, value)
            expected = by_click[-1] if option.multiple else by_click
            assert by_config == expected, (option.name, value)


@pytest.mark.parametrize("option", [o for o in options.OPTIONS if o.flag and o.config], ids=lambda o: o.name)
def test_a_flag_in_the_config_file_is_true_or_false_and_nothing_else(option):
    assert config.convert(option, True, "config.toml", False) is True
    with pytest.raises(GptPipeError) as caught:
        config.convert(option, "yes", "config.toml", False)
    assert caught.value.code == 78 and f"{option.key}: not true or false: 'yes'" in caught.value.message


def test_every_click_option_is_the_tables_and_no_other():
    params = command.get_params(click.Context(command))
    declared = {"help" if "--help" in param.opts else param.name: tuple(sorted(param.opts)) for param in params
                if isinstance(param, click.Option)}
    table = {o.dest: tuple(sorted(o.decls)) for o in options.OPTIONS}
    assert declared == table
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in options.EAGER:
            assert param.is_flag == options.BY_DEST[param.name].flag
            assert param.multiple == options.BY_DEST[param.name].multiple


def test_a_made_up_option_reaches_click_the_pre_scan_the_config_file_and_help(monkeypatch):
    """A new entry in the table is all it takes; nothing else names it."""
    import importlib

    made_up = options.Option(("--made-up",), "made_up", "integer", options.REQUEST, "A made-up option.", low=2)
    monkeypatch.setattr(options, "OPTIONS", (*options.OPTIONS, made_up))
    monkeypatch.setattr(options, "BY_DEST", {**options.BY_DEST, "made_up": made_up})
    monkeypatch.setattr(options, "BY_DECL", {**options.BY_DECL, "--made-up": made_up})
    from gpt_pipe import cli, helptext

    try:
        importlib.reload(helptext)
        fresh = importlib.reload(cli)
        fresh_config = importlib.reload(config)
        assert fresh.command.make_context("gpt-pipe", ["--made-up", "3", "hi"]).params["made_up"] == 3
        with pytest.raises(click.UsageError):
            fresh.command.make_context("gpt-pipe", ["--made-up", "1", "hi"])
        assert argv_.scan(["--made-up", "3", "hi"]).last("made_up") == 3
        assert not argv_.scan(["--made-up", "1", "hi"]).ok
        assert fresh_config._KEYS["made_up"] is made_up
        assert "made_up" in helptext.GROUPS[options.REQUEST]
        with click.Context(fresh.command) as ctx:
            assert "--made-up" in fresh.command.get_help(ctx)
    finally:
        monkeypatch.undo()
        importlib.reload(helptext)
        importlib.reload(cli)
        importlib.reload(config)


ARGV = [
    ["-s", "--profile", "x", "hi"],
    ["--profile", "a", "--profile", "b", "hi"],
    ["--profile=", "hi"],
    ["-qn", "hi"],
    ["-qsTEXT", "hi"],
    ["-qs", "TEXT", "hi"],
    ["-P4", "--batch", "in.jsonl"],
    ["--batch", "--full"],
    ["--batch", "-"],
    ["--batch"],
    ["hi", "--", "--full", "-s"],
    ["-", "hi"],
    ["-o", "a=1", "--option", "b=2", "--stop", "x", "--stop", "y", "hi"],
    ["--temperature", "-1", "hi"],
    ["-m", "--full", "hi"],
    ["--model=", "hi"],
    ["-s=x", "hi"],
    ["--full=yes", "hi"],
    ["--bogus", "hi"],
    ["-x", "hi"],
    ["hi", "-s"],
    ["--retries", "-1", "hi"],
]


@pytest.mark.parametrize("argv", ARGV, ids=" ".join)
def test_the_tokeniser_reads_every_command_line_as_click_does(argv):
    found = argv_.scan(argv)
    try:
        ctx = command.make_context("gpt-pipe", list(argv))
    except click.UsageError:
        assert not found.ok, argv
        return
    assert found.ok, argv
    assert tuple(found.words) == ctx.params["prompt"]
    for dest, values in found.given.items():
        got = ctx.params[dest]
        assert (tuple(values) if options.BY_DEST[dest].multiple else values[-1]) == (
            tuple(got) if options.BY_DEST[dest].multiple else got), (argv, dest)
    named = {name for name in ctx.params if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE}
    assert named - {"prompt"} == set(found.given), argv


def write_config(home, text: str) -> None:
    path = home / ".config" / "gpt-pipe" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_config_value_the_reader_refuses_opens_no_connection(run, server, home):
    """Drift fixed: early.py had a reader of its own that checked base_url and ca_bundle only."""
    write_config(home, "model = 3\n")
    r = run("--debug", "hi")
    assert r.code == 78 and "model: not a string: 3" in r.err
    assert server.connections == 0 and EARLY not in r.err


def test_a_profile_is_read_as_click_reads_it(run, server, home):
    """Drift fixed: ``-s --profile x`` is system "--profile" and prompt "x", as click reads it."""
    with Server(Reply(sse_chunks(["wrong"]))) as other:
        write_config(home, f'[profile.x]\nbase_url = "{other.url}"\n')
        r = run("-s", "--profile", "x", "hi")
        assert (r.code, r.out) == (0, b"Hello\n")
        assert server.requests[0].json["messages"] == [{"role": "system", "content": "--profile"},
                                                       {"role": "user", "content": "x hi"}]
        assert other.connections == 0


def test_the_last_profile_wins_and_the_other_host_sees_nothing(run, server, home):
    with Server(Reply(sse_chunks(["wrong"]))) as other:
        write_config(home, f'[profile.a]\nbase_url = "{other.url}"\n[profile.b]\nbase_url = "{server.url}"\n')
        r = run("--debug", "--profile", "a", "--profile", "b", "hi")
        assert (r.code, r.out) == (0, b"Hello\n") and EARLY in r.err
        assert other.connections == 0 and server.connections == 1


@pytest.mark.parametrize("args, code", [(["--base-url=", "hi"], 78), (["--profile=", "hi"], 0)])
def test_an_empty_value_never_connects_to_another_host(run, server, home, args, code):
    """An empty --base-url is refused (not the default host); an empty --profile chooses
    none (not GPT_PIPE_PROFILE's)."""
    with Server(Reply(sse_chunks(["wrong"]))) as other:
        write_config(home, f'[profile.p]\nbase_url = "{other.url}"\n')
        r = run("--debug", *args, extra_env={"GPT_PIPE_PROFILE": "p"})
        assert r.code == code and other.connections == 0, r


def test_config_batch_options_do_not_break_single_runs(run, server, home):
    write_config(home, 'keep_order = true\nbatch_text = true\noutput = "out.jsonl"\n')
    r = run("hi")
    assert (r.code, r.out) == (0, b"Hello\n")


def test_failures_are_mapped_by_a_pure_function():
    import requests
    import urllib3.exceptions

    from gpt_pipe.failures import failure

    base = "http://127.0.0.1:9/v1"
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection"))
    refused.__context__ = ConnectionRefusedError(111, "Connection refused")
    error = failure(refused, base, "/chat/completions", 5.0)
    assert (error.code, error.retryable) == (69, False) and "nothing listens there" in error.message
    error = failure(requests.exceptions.ConnectTimeout(), base, "/chat/completions", 5.0)
    assert (error.code, error.retryable) == (75, True) and "timed out connecting to 127.0.0.1:9" in error.message
    error = failure(requests.exceptions.ReadTimeout(), base, "/models", 5.0)
    assert error.code == 75 and "within 5 s" in error.message
    error = failure(requests.exceptions.ConnectionError(OSError(104, "Connection reset by peer")), base,
                    "/chat/completions", 5.0)
    assert (error.code, error.retryable) == (69, False) and "may have reached the model" in error.message
    error = failure(requests.exceptions.TooManyRedirects(), "http://u:pw@127.0.0.1:9/v1", "/models", 5.0)
    assert error.code == 76 and "pw" not in error.message
    assert failure(requests.exceptions.InvalidSchema(), base, "/models", 5.0).code == 78


QUICK = [*ARGV, ["-a", "x.png", "--attach", "y.png", "-f", "a.py", "hi"], ["-c", "hi"],
         ["--conversation", "c.jsonl", "hi"], ["--jsonl", "--tee", "log", "-P", "3", "hi"],
         ["-x", "--max-image", "1M", "hi"], ["--json", "-n", "--", "-hi"]]


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
@pytest.mark.parametrize("config", [{}, {"model": "from-file", "stop": ["a", "b"], "full": True, "max_answer": 1024}])
def test_the_quick_path_makes_the_settings_click_makes(argv, config):
    """launch.quick_settings parses a plain command line without click: both must give the
    same Settings (or both refuse it), with a config file's values under them."""
    from gpt_pipe.config import Layers
    from gpt_pipe.exitcodes import GptPipeError
    from gpt_pipe.launch import quick_settings

    layers = Layers()
    layers.default_map = dict(config)
    layers.level = dict.fromkeys(config, "file")

    def outcome(make):
        try:
            made = make()
        except (GptPipeError, click.UsageError) as exc:
            return ("refused", type(exc).__name__ if not isinstance(exc, GptPipeError) else exc.code)
        return None if made is None else {k: v for k, v in vars(made).items()}

    quick = outcome(lambda: quick_settings(list(argv), layers))
    slow = outcome(lambda: command.main(list(argv), prog_name="gpt-pipe", standalone_mode=False,
                                        default_map=layers.default_map, obj=layers))
    if quick is None:  # left to click
        return
    if isinstance(quick, tuple):
        assert isinstance(slow, tuple), (argv, quick, slow)
        return
    assert quick == slow, argv
