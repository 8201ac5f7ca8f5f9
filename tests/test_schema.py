"""Structured answers: --schema asks for JSON, checks the answer, and exits 8 when it does
not match; tool calls assembled in --json and --batch; -o KEY=@FILE."""

from __future__ import annotations

import json

import pytest
from server import Reply, chunk, event, replies, sse_chunks

from gpt_pipe.schema import concise

INVOICE = {"type": "object", "required": ["invoice", "items"], "additionalProperties": False,
           "properties": {"invoice": {"type": "string"},
                          "items": {"type": "array", "items": {"type": "object", "required": ["price"],
                                                               "properties": {"price": {"type": "number"}}}}}}
GOOD = '{"invoice": "A-17", "items": [{"price": 3.5}, {"price": 2}]}'
NESTED_BAD = '{"invoice": "A-17", "items": [{"price": 3.5}, {"price": "two"}]}'


def answering(*texts: str, finish: str = "stop") -> Reply:
    # The answer split over several deltas, as a model streams it.
    return Reply(sse_chunks([text[i:i + 7] for text in texts for i in range(0, len(text), 7)], finish=finish))


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_a_valid_answer_is_exit_0_and_json_carries_the_parsed_value(run, server):
    server.reply = answering(GOOD)
    r = run("--schema", json.dumps(INVOICE), "hi")
    assert (r.code, r.out, r.err) == (0, GOOD.encode() + b"\n", "")
    sent = server.requests[0].json["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "answer", "schema": INVOICE, "strict": True}}
    r = run("--json", "--schema", json.dumps(INVOICE), "hi")
    message = json.loads(r.out)["choices"][0]["message"]
    assert r.code == 0 and message["content"] == GOOD and message["parsed"] == json.loads(GOOD)


@pytest.mark.parametrize("mode", [[], ["--full"], ["--json"], ["--jsonl"]])
def test_an_answer_that_is_not_json_is_exit_8(run, server, mode):
    server.reply = answering("Sure! Here is the invoice: A-17")
    r = run(*mode, "--schema", "invoice", "hi")
    assert r.code == 8 and len(lines_of(r.err)) == 1 and "does not match --schema: it is not JSON" in r.err
    if mode in (["--full"], ["--json"]):
        assert r.out == b""
    elif mode == ["--jsonl"]:
        assert json.loads(r.out.splitlines()[-1])["error"]["exit"] == 8
    else:
        assert r.out.startswith(b"Sure! Here is")  # streamed as it came; the exit code says the rest


def test_a_violation_at_a_nested_path_is_named(run, server):
    server.reply = answering(NESTED_BAD)
    r = run("--full", "--schema", json.dumps(INVOICE), "hi")
    assert (r.code, r.out) == (8, b"") and "$.items[1].price" in r.err and "'two' is not of type 'number'" in r.err


def test_another_finish_reason_keeps_its_code_and_is_not_checked(run, server):
    server.reply = answering('{"invoice": "A-', finish="length")
    assert run("--schema", "invoice", "hi").code == 3


def test_the_concise_form_of_every_type():
    schema = concise("invoice, total number, count integer, paid bool, done boolean, items array, meta object, "
                     "note string")
    assert schema == {"type": "object", "additionalProperties": False,
                      "required": ["invoice", "total", "count", "paid", "done", "items", "meta", "note"],
                      "properties": {"invoice": {"type": "string"}, "total": {"type": "number"},
                                     "count": {"type": "integer"}, "paid": {"type": "boolean"},
                                     "done": {"type": "boolean"},
                                     "items": {"type": "array", "items": {"type": "string"}},
                                     "meta": {"type": "object"}, "note": {"type": "string"}}}


def test_the_concise_form_end_to_end_and_its_mistakes(run, server):
    server.reply = answering('{"invoice": "A-17", "total": 5.5, "paid": true, "items": ["pen"]}')
    r = run("--full", "--schema", "invoice, total number, paid bool, items array", "hi")
    assert r.code == 0 and json.loads(r.out)["total"] == 5.5
    assert server.requests[0].json["response_format"]["json_schema"]["schema"]["required"] == [
        "invoice", "total", "paid", "items"]
    r = run("--schema", "total money", "hi")  # a bad value on the command line: 2, as click says of others
    assert r.code == 2 and "types: string, number" in r.err and len(server.requests) == 1


def test_the_concise_form_takes_llms_names_and_descriptions():
    schema = concise("name str, age int, score float, bio: a short bio, tags list")
    assert schema["properties"] == {
        "name": {"type": "string"}, "age": {"type": "integer"}, "score": {"type": "number"},
        "bio": {"type": "string", "description": "a short bio"}, "tags": {"type": "array", "items": {"type": "string"}}}


def test_a_schema_from_a_file_and_a_bad_schema(run, server, tmp_path):
    path = tmp_path / "invoice.json"
    path.write_text(json.dumps(INVOICE))
    server.reply = answering(GOOD)
    assert run("--schema", f"@{path}", "hi").code == 0
    assert server.requests[0].json["response_format"]["json_schema"]["schema"] == INVOICE
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": 5}')
    r = run("--schema", f"@{bad}", "hi")
    assert r.code == 65 and "not a valid JSON Schema" in r.err
    r = run("--schema", "@/no/such/schema.json", "hi")
    assert r.code == 65 and "/no/such/schema.json" in r.err and "'@@'" in r.err
    assert len(server.requests) == 1


def test_prompt_mode_puts_the_schema_in_the_system_message(run, server):
    server.reply = answering(GOOD)
    r = run("--schema-mode", "prompt", "-s", "You read invoices.", "--schema", json.dumps(INVOICE), "hi")
    body = server.requests[0].json
    assert r.code == 0 and "response_format" not in body
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You read invoices.\n\n")
    assert json.dumps(INVOICE) in system["content"]


def test_a_server_that_rejects_response_format_points_to_prompt_mode(run, server):
    server.reply = Reply([b'{"error": {"message": "Unknown field: response_format"}}'], status=400,
                         content_type="application/json", framing="length")
    r = run("--schema", "invoice", "hi")
    assert r.code == 65 and "--schema-mode prompt" in r.err and len(lines_of(r.err)) == 1


def test_retries_on_invalid_answers_only_where_nothing_was_written(run, server):
    server.reply = replies(answering("not json"), answering(GOOD))
    r = run("--full", "--schema", json.dumps(INVOICE), "--retries-invalid", "1", "hi")
    assert (r.code, r.out) == (0, GOOD.encode() + b"\n") and len(server.requests) == 2
    assert "asking again (1/1)" in r.err
    server.requests.clear()
    r = run("--schema", json.dumps(INVOICE), "--retries-invalid", "1", "hi")  # text mode: it cannot work
    assert r.code == 2 and server.requests == []


def test_batch_results_carry_the_parsed_value_or_exit_8(run, server):
    def answer(request):
        prompt = request.json["messages"][-1]["content"]
        return answering(GOOD if prompt == "good" else NESTED_BAD)

    server.reply = answer
    r = run("--batch", "--keep-order", "--schema", json.dumps(INVOICE),
            stdin=b'{"id": 1, "prompt": "good"}\n{"id": 2, "prompt": "bad"}\n')
    got = [json.loads(line) for line in r.out.splitlines()]
    assert got[0]["exit"] == 0 and got[0]["json"] == json.loads(GOOD)
    assert got[1]["exit"] == 8 and "$.items[1].price" in got[1]["error"] and r.code == 8
    r = run("--batch", "--schema", "x", stdin=b'not json\n{"id": 2, "prompt": "bad"}\n')
    assert r.code == 65  # in the severity order, 65 comes before 8


TOOLS_STREAMED = [
    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
    {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    {"index": 0, "function": {"arguments": '{"city": '}},
    {"index": 1, "function": {"arguments": '{"zone": "CET"}'}},
    {"index": 0, "function": {"arguments": '"Oslo"}'}},
]
TOOLS_WHOLE = [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}},
]


def tool_call_stream() -> Reply:
    deltas = [{"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
              for call in TOOLS_STREAMED]
    return Reply([*map(event, deltas), event(chunk(finish="tool_calls")), b"data: [DONE]\n\n"])


def test_json_assembles_interleaved_tool_calls_as_a_non_streamed_answer_has_them(run, server):
    server.reply = tool_call_stream()
    streamed = run("--json", "hi")
    whole = {"id": "x", "object": "chat.completion", "created": 1, "model": "green-l",
             "choices": [{"index": 0, "finish_reason": "tool_calls",
                          "message": {"role": "assistant", "content": None, "tool_calls": TOOLS_WHOLE}}]}
    server.reply = Reply([json.dumps(whole).encode()], content_type="application/json", framing="length")
    non_streamed = run("--json", "hi")
    assert streamed.code == non_streamed.code == 5
    for r in (streamed, non_streamed):
        message = json.loads(r.out)["choices"][0]["message"]
        assert message["tool_calls"] == TOOLS_WHOLE and message["content"] is None


def test_batch_results_carry_tool_calls(run, server):
    server.reply = tool_call_stream()
    r = run("--batch", stdin=b'{"id": 1, "prompt": "weather?"}\n')
    result = json.loads(r.out)
    assert result["exit"] == 5 and result["tool_calls"] == TOOLS_WHOLE


def test_option_values_from_files(run, server, tmp_path):
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "f"}}]')
    note = tmp_path / "note.txt"
    note.write_text("plain words\n")
    r = run("-o", f"tools=@{tools}", "-o", f"user=@{note}", "-o", "tag=@@home", "hi")
    body = server.requests[0].json
    assert r.code == 0 and body["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert body["user"] == "plain words\n" and body["tag"] == "@home"
    r = run("-o", "tools=@/no/such/tools.json", "hi")
    assert r.code == 65 and "/no/such/tools.json" in r.err and "'@@'" in r.err and len(server.requests) == 1


def test_exit_code_8_is_in_the_help(run):
    assert "8 answer does not match --schema" in " ".join(run("--help").out.decode().split())
