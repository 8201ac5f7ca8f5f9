"""-x/--extract: the first fenced code block of an answer (as llm's --extract does), so that
`git diff | gpt-pipe -x "commit message" | git commit -F -` never commits a fence. Pure."""

from __future__ import annotations


def first_code_block(text: str) -> str:
    """What the first fenced block (``` or ~~~, up to three spaces in, any info string)
    holds, up to its closing fence or the end of the text; ``text`` itself when it has none."""
    lines = text.split("\n")
    for start, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3:
            continue
        mark = stripped[:1]
        if mark not in ("`", "~"):
            continue
        fence = len(stripped) - len(stripped.lstrip(mark))
        if fence < 3 or (mark == "`" and "`" in stripped[fence:]):
            continue
        body = []
        for inner in lines[start + 1:]:
            closing = inner.strip(" ")
            if len(closing) >= fence and closing == mark * len(closing):
                break
            body.append(inner)
        return "\n".join(body) + "\n" if body else ""
    return text
