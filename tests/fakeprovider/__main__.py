"""Run the fake provider on its own: ``python -m tests.fakeprovider --port 8001``."""

from __future__ import annotations

import argparse
import contextlib

from tests.fakeprovider.server import FakeProvider, Script

# Markdown-flavoured filler, so a demo shows headings, lists, emphasis and code rendering.
_LOREM = (
    "## Lorem ipsum\n\nDolor sit amet, **consectetur** adipiscing elit. Sed do eiusmod tempor "
    "incididunt ut labore et *dolore* magna aliqua.\n\n- Ut enim ad minim veniam\n- Quis nostrud "
    'exercitation `ullamco` laboris\n- Nisi ut aliquip ex ea commodo\n\n```python\nprint("consequat")\n```\n\n'
    "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
)


def lorem_tokens(count: int) -> list[str]:
    """``count`` word-sized tokens of the filler, repeated as needed, whitespace kept."""
    pieces: list[str] = []
    for word in _LOREM.split(" "):
        pieces.append(word if not pieces else " " + word)
    return [pieces[i % len(pieces)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tokens-per-second", type=float, default=None)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--echo", action="store_true", help="answer with the last user message's words")
    args = parser.parse_args()
    fake = FakeProvider(args.host, args.port)
    fake.set_default(
        Script(
            tokens=lorem_tokens(args.tokens),
            tokens_per_second=args.tokens_per_second,
            first_token_delay=args.first_token_delay,
            echo=args.echo,
            usage=(12, args.tokens),
        )
    )
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever(
            lambda: print(f"fake provider on {fake.url} (OpenAI base {fake.url}/v1)", flush=True)
        )


if __name__ == "__main__":
    main()
