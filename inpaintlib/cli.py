"""The ``inpaint`` command line.

A user mistake (bad data path, unknown profile, ...) prints one line on stderr
and exits with status 2; it never shows a traceback. Each command checks its
arguments, its data source and its model folder before anything imports
TensorFlow, so a mistake costs a fraction of a second.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import shutil
import sys
import warnings
from pathlib import Path

from inpaintlib.errors import ConfigError, InpaintError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line, not usage plus message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: Faces ``inpaint evaluate`` gives face scores by default: each takes about 0.1 s of a CPU core.
DEFAULT_FACE_IMAGES = 1000

def build_parser() -> argparse.ArgumentParser:
    """The ``inpaint`` argument parser: its commands train, evaluate, fill, export, book, models, data,
    assignment and grade."""
    from inpaintlib.config import DEFAULT_TEMPERATURE  # light: no TensorFlow

    parser = _Parser(prog="inpaint", description="Image inpainting on faces: train, evaluate, fill, build the book.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train a model", description="Train a model for --steps steps (batches) and save it into "
        "--out as model.keras, config.json and history.json. Checkpoints every --checkpoint-every steps; "
        "after an interruption, the same command with --resume continues from the last checkpoint.")
    train.add_argument("model", choices=["unet", "vaegan"], help="the model to train")
    train.add_argument("--data", default="auto", help="synthetic, celeba:PATH or auto (the default)")
    train.add_argument("--image-size", type=int, default=64)
    train.add_argument("--mask", default="mixed", help="the holes to train on: mixed (the default: centre "
                       "squares, random boxes and free-form strokes of many sizes), center, random-box, free-form, "
                       "or proportions such as mixed:center=1,free-form=2")
    train.add_argument("--hole", type=float, default=0.5, help="hole size as a fraction of the image side")
    train.add_argument("--steps", type=int, default=1000, help="training steps (batches), not epochs")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, help="Adam's step (default: 1e-3 U-Net, 5e-4 VAE-GAN)")
    train.add_argument("--schedule", default="constant", help="constant (default) or cosine, which lowers "
                       "the learning rate (every optimizer's, for the VAE-GAN) to zero at the last step")
    train.add_argument("--loss", help="U-Net: mae (L1, the default) or mse (the original recipe's), over "
                       "the output: the hole alone, unless --no-keep-known")
    train.add_argument("--limit", type=int, help="train on the first N images of the train split")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--base-filters", type=int, help="filters of the first level (default 32)")
    train.add_argument("--depth", type=int, help="levels down: U-Net poolings (default 3), VAE-GAN strided "
                       "convolutions (default 4)")
    train.add_argument("--no-mask-channel", action="store_true", help="U-Net: hide the mask from the network (the original recipe)")
    train.add_argument("--no-smooth-start", action="store_true", help="start from a zero hole, as the "
                       "original recipes do (default: from a smooth fill, learning its correction)")
    train.add_argument("--smooth-refine-steps", type=int, metavar="N", help="conjugate-gradient steps that "
                       "bring the smooth start to the biharmonic fill (default 0; at the quick budget, 10 gain "
                       "about 0.4 dB on strokes and small boxes, lose 0.3 to 0.8 dB on centre squares, and take "
                       "15-20%% more time per step: bench/time_to_quality.py)")
    train.add_argument("--no-keep-known", action="store_true", help="U-Net: the loss sees the whole output, "
                       "as in the original recipe (default: the known pixels pass through, the loss sees "
                       "the hole alone)")
    train.add_argument("--latent-dim", type=int, help="VAE-GAN: length of the latent code (default 128)")
    train.add_argument("--no-image-skips", action="store_true", help="VAE-GAN: the decoder sees the latent code "
                       "alone, as in Larsen et al. (default: it also sees the encoder's feature maps); implies "
                       "--no-smooth-start")
    train.add_argument("--max-std", type=float, metavar="S", help="VAE-GAN: bound the standard deviation of "
                       "the code's Gaussians at S (default: no bound)")
    train.add_argument("--posterior", choices=["whole", "visible"], help="VAE-GAN: what the code is inferred "
                       "from in training: the whole face, with a learned prior (the default), or the visible "
                       "face alone with the prior N(0, I), the first design")
    train.add_argument("--discriminator", choices=["global", "patch", "global+local"],
                       help="VAE-GAN: what the discriminator judges (default global: the whole image)")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    train.add_argument("--out", required=True, help="folder for the trained model")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")

    evaluate = commands.add_parser(
        "evaluate", help="score a model or a classical method on fixed evaluation masks",
        description="Score a trained model (a folder written by inpaint train) or a classical method on the "
        "first --limit images of a split, with the fixed evaluation masks every method shares. With the faces "
        "extra installed (pip install 'inpaintlib[faces]'), it also scores how well each fill keeps the person "
        "(identity) and looks like a real face (ffd, beside ffd_floor), with a face-recognition network: "
        "about 0.2 s of CPU per image.")
    evaluate.add_argument("--model", required=True, help="a model folder, or telea, navier-stokes, biharmonic, mean")
    evaluate.add_argument("--data", default="auto", help="synthetic, celeba:PATH or auto (the default)")
    evaluate.add_argument("--split", default="test", help="train, validation or test (default)")
    evaluate.add_argument("--mask", default="center", help="center (default), random-box, free-form or mixed")
    evaluate.add_argument("--hole", type=float, default=0.5, help="hole size as a fraction of the image side")
    evaluate.add_argument("--limit", type=int, help="first N images of the split (default: all)")
    evaluate.add_argument("--image-size", type=int, default=64, help="for classical methods; a model uses its own")
    evaluate.add_argument("--face-images", type=int, metavar="N", help="face scores on the first N images "
                          f"(default: up to {DEFAULT_FACE_IMAGES} when the faces extra is installed, a minute or "
                          "two on a CPU; 0 turns them off)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (face scores null when not computed)")

    fill = commands.add_parser(
        "fill", help="inpaint one image file",
        description="Inpaint one image of up to 89 megapixels (a JPEG, decoded at reduced size, up to 179). "
        "It is centre-cropped to a square and resized to the model's image size (64x64 by default); the "
        "output has that size.")
    fill.add_argument("image", help="a JPEG or PNG file")
    fill.add_argument("--model", required=True, help="a model folder, or telea, navier-stokes, biharmonic, mean")
    fill.add_argument("--mask", default="center", help="center (default), random-box, free-form, mixed, or a PNG "
                      "of the model's size whose non-zero pixels mark the hole")
    fill.add_argument("--hole", type=float, default=0.5, help="hole size for a drawn mask")
    fill.add_argument("--seed", type=int, default=0, help="seed of a drawn random-box or free-form mask, and of the --samples")
    fill.add_argument("--image-size", type=int, default=64, help="for classical methods; a model uses its own")
    fill.add_argument("--samples", type=int, default=1, help="VAE-GAN: write this many different fills, "
                      "OUT-1.png, OUT-2.png, ...")
    fill.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help="VAE-GAN: spread of the "
                      f"--samples ({DEFAULT_TEMPERATURE:g}, the default; 1: the prior as trained; less: closer to the "
                      "single most likely fill)")
    fill.add_argument("-o", "--output", required=True, help="the filled image (PNG)")

    export = commands.add_parser(
        "export", help="export a trained model to ONNX, for runtimes without TensorFlow",
        description="Write MODEL.onnx and its manifest MODEL.json into --output: the U-Net as one graph "
        "(masked_image, mask -> image), the VAE-GAN as one graph with its noise as a third input. Each "
        "export is checked against Keras on the first faces of --data's validation split (at most "
        "1e-4 apart) before it is written. Needs the export extra: pip install 'inpaintlib[export]'.")
    export.add_argument("model", help="a model folder written by inpaint train")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="onnx (the only one)")
    export.add_argument("--data", default="auto", help="faces to check the export on: synthetic, "
                        "celeba:PATH or auto (the default)")
    export.add_argument("-o", "--output", required=True, help="folder for the graph and its manifest")

    book = commands.add_parser(
        "book",
        help="execute the chapters with papermill, then build the HTML book",
        description="Execute every chapter with a profile's parameters into _build/executed/, "
        "then build the HTML into _build/html/ with Jupyter Book (warnings are errors).",
    )
    book.add_argument("--profile", default="quick", help="smoke, quick (default) or full; see inpaintlib/profiles.yml")
    book.add_argument("--data", help="data spec for every chapter: synthetic, celeba:PATH or auto (the default)")
    book.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                      help="set a parameter in every chapter that has it, e.g. -p seed 3, or in one chapter, "
                      "e.g. -p 02_unet:depth 2 (repeatable; it prints the chapters each one sets)")
    book.add_argument("--root", help="the book's folder (default: the working folder)")
    book.add_argument("--chapter", action="append", metavar="NAME", dest="chapters",
                      help="build a book of this chapter alone, e.g. --chapter 02_unet (repeatable)")
    book.add_argument("--no-html", action="store_true", help="only execute the chapters")
    book.add_argument("--classroom", action="store_true",
                      help="a classroom edition: the exercises without their solutions")
    book.add_argument("--rerun", action="store_true",
                      help="execute every chapter, even one whose last run (in _build/chapters/) is still current")

    models = commands.add_parser(
        "models", help="list the cached models, or carry them in a bundle (export, import)",
        description="The trained-model cache, where the chapters and train_or_load find their models: list it, "
        "export models into one zip with a manifest (a bundle), or import a bundle (a file or an http(s) URL, "
        "checked before the cache changes), so that the chapters load those models instead of training them.")
    models_commands = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    listing = models_commands.add_parser("list", help="the cached models: kind, key, steps, data, device, age")
    listing.add_argument("--json", action="store_true", help="one JSON list")
    bundle_out = models_commands.add_parser("export", help="write models and their manifest into a bundle (.zip)")
    bundle_out.add_argument("models", nargs="*", metavar="KEY|DIR", help="cache keys (the first characters are "
                            "enough; see inpaint models list) or model folders")
    bundle_out.add_argument("--all", action="store_true", help="every cached model this code made (what a book "
                            "build trained, on a fresh machine)")
    bundle_out.add_argument("-o", "--output", required=True, help="the bundle to write, e.g. models.zip")
    models_commands.add_parser("digest", help="the digest of the code every cache key includes",
                               description="Print the digest of the code that trains the models (the library, "
                               "TensorFlow and Keras), which every model's cache key includes: a CI cache of the "
                               "models keyed by it is reused until that code changes.")
    bundle_in = models_commands.add_parser("import", help="check a bundle and place its models in the cache")
    bundle_in.add_argument("bundle", help="a bundle's path, or its http(s) URL (downloaded, resumable)")
    bundle_in.add_argument("--sha256", metavar="HEX", help="the bundle's expected sha256, checked first")

    assignment = commands.add_parser(
        "assignment", help="write a chapter set up for one exercise",
        description="Write the chapter of an exercise (inpaintlib/exercises.yml) set up for it: a cell that sets "
        "its recipe after the profile, and a last cell that hands in its answers for inpaint grade.")
    assignment.add_argument("exercise", help="the exercise's id, e.g. 2.1")
    assignment.add_argument("-o", "--output", required=True, help="the notebook to write, e.g. exercise-2.1.ipynb")
    grading = commands.add_parser(
        "grade", help="check an executed submission's answers against their expected ranges",
        description="Read the answers an executed submission (written by inpaint assignment) handed in and check "
        "each against the range reference runs put it in, for the profile and data it ran with. Exit status: 0 "
        "every check passed, 1 one failed, 2 the submission cannot be graded (one line says why).")
    grading.add_argument("submission", help="the executed notebook")
    grading.add_argument("--exercise", help="the exercise it must be (default: the one it hands in)")
    grading.add_argument("--json", action="store_true", help="one JSON list of the checks")
    grading.add_argument("--rerun", action="store_true", help="execute the submission first (papermill), "
                         "into SUBMISSION-graded.ipynb beside it")
    grading.add_argument("--profile", help="with --rerun: the profile to run it at (smoke, quick, ...)")
    grading.add_argument("--timeout", type=int, default=1800, help="with --rerun: seconds a cell may run")

    data = commands.add_parser("data", help="load a data source and report its splits, or set CelebA up",
                               description="Load (and cache) each split of a data source and print its size; "
                               "inpaint data setup SOURCE makes CelebA ready first.")
    data.add_argument("--data", default="auto", help="synthetic, celeba:PATH or auto (the default)")
    data.add_argument("--image-size", type=int, default=64)
    data.add_argument("--limit", type=int, help="first N images of each split")
    setup = data.add_subparsers(dest="data_command", metavar="setup", parser_class=_Parser).add_parser(
        "setup", help="get CelebA from Kaggle, or copy a CelebA .zip to local disk, and check it",
        description="Make CelebA ready: download it from Kaggle (needs kagglehub and a Kaggle API token), copy a "
        ".zip (from Google Drive, say) to local disk, or check a folder; then print the path to use as "
        "CELEBA_DIR or --data celeba:PATH.")
    setup.add_argument("source", help="kaggle, a CelebA .zip, or a CelebA folder")
    setup.add_argument("--target", help="folder a .zip is copied into (default: celeba/ in the cache folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``inpaint`` command (``argv`` without the program's name; the process's arguments by
    default); the exit status: 0, 2 for a user's mistake (one line on stderr), 1 for a failed book or a
    failed grading check."""
    from PIL import Image

    args = build_parser().parse_args(argv)
    commands = {"train": _train, "evaluate": _evaluate, "fill": _fill, "export": _export, "book": _book,
                "models": _models, "data": _data, "assignment": _assignment, "grade": _grade}
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
        # read_image decodes a large JPEG at reduced size and refuses what it cannot: PIL's alarm is noise here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return commands[args.command](args)
        except InpaintError as error:
            print(f"inpaint: error: {error}", file=sys.stderr)
            return 2


def _show_warning(show_python_warning, message, category, filename, lineno, file=None, line=None):
    """Show inpaintlib's warnings (skipped images, synthetic stand-in) as one line, others as Python does."""
    from inpaintlib.data import DataWarning

    if issubclass(category, DataWarning):
        print(f"inpaint: warning: {message}", file=sys.stderr)
    else:
        show_python_warning(message, category, filename, lineno, file, line)


def _train(args) -> int:
    from inpaintlib.config import TrainConfig
    from inpaintlib.data import check_source

    given = {"base_filters": args.base_filters, "depth": args.depth, "latent_dim": args.latent_dim,
             "mask_channel": False if args.no_mask_channel else None,
             "image_skips": False if args.no_image_skips else None,
             "smooth_start": False if args.no_smooth_start or args.no_image_skips else None,
             "posterior": args.posterior, "discriminator": args.discriminator,
             "keep_known": False if args.no_keep_known else None, "smooth_refine_steps": args.smooth_refine_steps,
             "max_std": args.max_std}
    options = {name: value for name, value in given.items() if value is not None}
    config = TrainConfig(
        model=args.model, data=args.data, image_size=args.image_size, mask=args.mask, hole=args.hole,
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, loss=args.loss,
        schedule=args.schedule, seed=args.seed,
        limit=args.limit, model_options=options, checkpoint_every=args.checkpoint_every,
    ).validate()
    check_source(config.data)
    from inpaintlib.training import train

    fresh = not Path(args.out).exists()
    try:
        trained = train(config, args.out, resume=args.resume)
    except InpaintError:
        if fresh:  # a mistake found before training (bad data, hole, ...): leave no half-made model folder
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    last = trained.history[-1] if trained.history else {}
    print(f"Trained {trained.name} for {config.steps} steps: loss {last.get('loss', float('nan')):.4f}, "
          f"saved in {args.out}")
    return 0


def _check_method(name: str) -> int | None:
    """Check a classical method's name or a model folder, without loading the model (nor
    TensorFlow); the model's image size, or None for a classical method."""
    from inpaintlib.baselines import BASELINES

    if name in BASELINES:
        return None
    from inpaintlib.config import read_model_folder

    config, _ = read_model_folder(name)
    return config.image_size


def _method(name: str):
    """A classical method by name, or a trained model from its folder."""
    from inpaintlib.baselines import BASELINES, get_baseline

    if name in BASELINES:
        return get_baseline(name)
    from inpaintlib.training import load_trained

    return load_trained(name)


def _evaluate(args) -> int:
    from inpaintlib.data import check_source, load_images, resolve_data_spec
    from inpaintlib.masks import check_hole, check_mask_kind

    check_mask_kind(args.mask)
    check_hole(args.hole)
    if args.face_images is not None:
        from inpaintlib.facemetrics import MIN_FACE_IMAGES

        if args.face_images != 0 and args.face_images < MIN_FACE_IMAGES:
            raise ConfigError(f"--face-images must be 0 (no face scores) or at least {MIN_FACE_IMAGES} (their "
                              f"floor splits them in two halves), not {args.face_images}")
    image_size = _check_method(args.model) or args.image_size
    check_source(args.data)
    images = load_images(args.data, args.split, image_size=image_size, limit=args.limit)
    from inpaintlib.masks import eval_masks  # TensorFlow from here on: every mistake above failed fast
    from inpaintlib.metrics import evaluate

    method = _method(args.model)
    masks = eval_masks(args.mask, len(images), image_size, hole=args.hole)
    face_images = args.face_images
    if face_images is None:  # up to the default, where the faces extra is installed and there are enough
        from inpaintlib import facemetrics

        enough = facemetrics.available() and len(images) >= facemetrics.MIN_FACE_IMAGES
        face_images = min(len(images), DEFAULT_FACE_IMAGES) if enough else 0
    scores = evaluate(method, images, masks, face_images=face_images)
    result = {"method": scores.pop("method"), "data": resolve_data_spec(args.data), "split": args.split,
              "mask": args.mask, "hole": args.hole, **scores}
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def _fill(args) -> int:
    import numpy as np

    from inpaintlib.data import check_output_path, read_image, save_png_atomically
    from inpaintlib.masks import check_hole, check_mask_kind, draw_masks, is_mask_kind, load_mask

    if args.samples < 1:
        raise ConfigError(f"--samples must be a positive integer, not {args.samples}")
    if not args.temperature >= 0:
        raise ConfigError(f"--temperature must be at least 0, not {args.temperature}")
    image_size = _check_method(args.model) or args.image_size
    image = read_image(args.image, image_size)
    if is_mask_kind(args.mask):
        check_mask_kind(args.mask)
        check_hole(args.hole)
    else:
        mask = load_mask(args.mask, image_size)
    check_output_path(args.output)
    method = _method(args.model)  # TensorFlow from here on: every mistake above failed fast
    if is_mask_kind(args.mask):
        mask = draw_masks(args.mask, 1, image_size, seed=(args.seed, 0), hole=args.hole).numpy()[0]
    image = image[None].astype(np.float32) / 255.0
    if args.samples == 1:
        fills, outputs = method.inpaint(image, mask[None]), [Path(args.output)]
    elif getattr(getattr(method, "model", None), "sample_fills", None) is None:
        raise ConfigError(f"{method.name} fills a hole one way only: --samples needs a VAE-GAN model folder")
    else:
        method.temperature = args.temperature
        fills = method.sample(image, mask[None], args.samples, seed=args.seed)[:, 0]
        output = Path(args.output)
        outputs = [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, args.samples + 1)]
    for filled, output in zip(fills, outputs):
        save_png_atomically(output, np.round(np.clip(filled, 0, 1) * 255).astype(np.uint8))
    print(f"Filled a {image_size}x{image_size} image with {method.name}: {', '.join(map(str, outputs))}")
    return 0


def _export(args) -> int:
    from inpaintlib.baselines import BASELINES
    from inpaintlib.config import read_model_folder
    from inpaintlib.data import check_source, load_images

    if args.model in BASELINES:
        raise ConfigError(f"{args.model} is a classical method, with no network to export: name a model folder "
                          f"written by inpaint train")
    config, _ = read_model_folder(args.model)
    check_source(args.data)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file: name a folder for the graph and its manifest")
    from inpaintlib.export import CHECK_IMAGES, to_onnx

    images = load_images(args.data, "validation", image_size=config.image_size, limit=CHECK_IMAGES)
    manifest = to_onnx(args.model, output, images)
    print(f"Exported {args.model} to {output / manifest['file']} ({(output / manifest['file']).stat().st_size:,} "
          f"bytes); onnxruntime within {manifest['max_difference']:.1g} of Keras on {manifest['checked_on']} faces")
    return 0


def _book(args) -> int:
    from inpaintlib.book import ChapterError, build_book
    from inpaintlib.profiles import parse_value

    overrides = {name: parse_value(value) for name, value in args.parameter}
    try:
        build_book(args.profile, data=args.data, overrides=overrides, root=args.root, html=not args.no_html,
                   rerun=args.rerun, only=args.chapters, solutions=not args.classroom)
    except ChapterError as error:
        print(f"inpaint: {error}", file=sys.stderr)
        return 1
    return 0


def _models(args) -> int:
    from inpaintlib import bundles

    if args.models_command == "list":
        rows = bundles.cached_models()
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        if not rows:
            print(f"No trained model in {bundles.models_folder()}")
        for row in rows:
            print(f"{row['name']}  {row['steps']} steps of {row['batch_size']}, {row['mask']} holes, "
                  f"{row['seconds'] / 60:.1f} min on {row['device']}; {row['data']}; {row['bytes'] / 1e6:.1f} MB, "
                  f"{row['modified']}, {row['origin']}{'' if row['current'] is not False else ', made by other code'}")
        return 0
    if args.models_command == "digest":
        from inpaintlib.provenance import code_digest

        print(code_digest())
        return 0
    if args.models_command == "export":
        if bool(args.models) == args.all:
            raise ConfigError("inpaint models export: name the models (cache keys or folders) or pass --all, not both")
        chosen = args.models or [bundles.models_folder() / row["name"] for row in bundles.cached_models() if row["current"]]
        if not chosen:
            raise ConfigError(f"no model of this code in {bundles.models_folder()}: train some first (inpaint book)")
        manifest = bundles.export_bundle(chosen, args.output)
        print(f"Wrote {args.output}: {', '.join(entry['folder'] for entry in manifest['models'])} "
              f"({Path(args.output).stat().st_size / 1e6:.1f} MB)")
        return 0
    for row in bundles.import_bundle(args.bundle, args.sha256):
        print(f"{row['folder']}: {row['result']}")
    return 0


def _assignment(args) -> int:
    from inpaintlib.exercises import get_exercise, write_assignment

    out = write_assignment(args.exercise, args.output)
    exercise = get_exercise(args.exercise)
    print(f"Wrote {out}: {exercise.chapter} set up for exercise {exercise.id} ({exercise.title}). Run it, "
          f"then: inpaint grade {shlex.quote(str(out))}")
    return 0


def _grade(args) -> int:
    from inpaintlib.exercises import SubmissionError, grade, rerun

    path = Path(args.submission)
    if not path.is_file():
        raise SubmissionError(f"{path} does not exist: name the executed notebook to grade")
    if args.profile and not args.rerun:
        raise ConfigError("--profile sets the profile of a rerun: add --rerun")
    if args.rerun:
        path = rerun(path, profile=args.profile, timeout=args.timeout)
    rows = grade(path, args.exercise)
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            if "rule" in row:  # a question, graded by the run's own answers
                print(f"{'pass' if row['passed'] else 'FAIL'}  {row['check']} = {row['found']} "
                      f"(expected {row['expected']}: {row['rule']} in this run)")
                continue
            low, high = row["expected"]
            print(f"{'pass' if row['passed'] else 'FAIL'}  {row['check']} = {row['found']:.4g} "
                  f"(expected {low:.4g} to {high:.4g})")
    return 0 if all(row["passed"] for row in rows) else 1


def _data(args) -> int:
    from inpaintlib.data import SPLITS, load_images, parse_data_spec

    if args.data_command == "setup":
        from inpaintlib.data import setup_celeba

        path = setup_celeba(args.source, args.target)
        # A command cannot set its shell's environment: say how to.
        print(f"In this shell: export CELEBA_DIR={shlex.quote(str(path))} (or pass --data {shlex.quote(f'celeba:{path}')})")
        return 0
    source = parse_data_spec(args.data)
    print(f"Data: {source.label}")
    for split in SPLITS:
        images = load_images(source, split, image_size=args.image_size, limit=args.limit)
        print(f"  {split:<10} {len(images):>7} images of {args.image_size}x{args.image_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
