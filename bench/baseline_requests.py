"""The floor: click and requests imported, the body read with iter_lines, each delta flushed."""
import json
import os
import sys

import click  # noqa: F401  (the design card's two dependencies: their import cost is the floor)
import requests

url = os.environ["GREENPT_BASE_URL"] + "/chat/completions"
body = {"model": "green-l", "messages": [{"role": "user", "content": sys.argv[1]}], "stream": True}
out = sys.stdout.buffer
with requests.post(url, json=body, headers={"Authorization": "Bearer " + os.environ["GREENPT_API_KEY"]},
                   stream=True) as response:
    for line in response.iter_lines():
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            choices = json.loads(line[6:])["choices"]
            if choices and (text := choices[0]["delta"].get("content")):
                out.write(text.encode())
                out.flush()
