"""The ``inpaint`` command line.

A user mistake (bad data path, unknown profile, ...) prints one line on stderr
and exits with status 2; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import sys

from inpaintlib.errors import InpaintError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line, not usage plus message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inpaint", description="Image inpainting on faces: build the book, load data.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    book = commands.add_parser(
        "book",
        help="execute the chapters with papermill, then build the HTML book",
        description="Execute every chapter with a profile's parameters into _build/executed/, "
        "then build the HTML into _build/html/ with Jupyter Book (warnings are errors).",
    )
    book.add_argument("--profile", default="quick", help="smoke, quick (default) or full; see book/profiles.yml")
    book.add_argument("--data", help="data spec for every chapter: synthetic, celeba:PATH or auto (the default)")
    book.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                      help="set a chapter parameter, e.g. -p n_faces 32 (repeatable)")
    book.add_argument("--root", help="the book's folder (default: the working folder)")
    book.add_argument("--no-html", action="store_true", help="only execute the chapters")

    data = commands.add_parser("data", help="load a data source and report its splits",
                               description="Load (and cache) each split of a data source and print its size.")
    data.add_argument("--data", default="auto", help="synthetic, celeba:PATH or auto (the default)")
    data.add_argument("--image-size", type=int, default=64)
    data.add_argument("--limit", type=int, help="first N images of each split")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "book":
            return _book(args)
        return _data(args)
    except InpaintError as error:
        print(f"inpaint: error: {error}", file=sys.stderr)
        return 2


def _book(args) -> int:
    from inpaintlib.book import ChapterError, build_book
    from inpaintlib.profiles import parse_value

    overrides = {name: parse_value(value) for name, value in args.parameter}
    try:
        build_book(args.profile, data=args.data, overrides=overrides, root=args.root, html=not args.no_html)
    except ChapterError as error:
        print(f"inpaint: {error}", file=sys.stderr)
        return 1
    return 0


def _data(args) -> int:
    from inpaintlib.data import SPLITS, load_images, parse_data_spec

    source = parse_data_spec(args.data)
    print(f"Data: {source.label}")
    for split in SPLITS:
        images = load_images(source, split, image_size=args.image_size, limit=args.limit)
        print(f"  {split:<10} {len(images):>7} images of {args.image_size}x{args.image_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
