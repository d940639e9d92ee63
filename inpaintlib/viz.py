"""Pictures a reader would rather look at than read: image grids and source code."""

from __future__ import annotations

import inspect

import matplotlib.pyplot as plt
import numpy as np

#: The colour holes are painted in when a masked image is shown (neutral grey).
HOLE_COLOUR = (0.5, 0.5, 0.5)


def as_float(images) -> np.ndarray:
    """Images as float32 in [0, 1], from uint8 or float input."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return np.clip(images.astype(np.float32), 0.0, 1.0)


def paint_holes(images, masks, colour=HOLE_COLOUR) -> np.ndarray:
    """Masked images as a person sees them: the missing pixels painted ``colour``."""
    images, masks = as_float(images), np.asarray(masks, np.float32)
    return images * (1.0 - masks) + masks * np.asarray(colour, np.float32)


def show_grid(images, ncols: int = 8, title: str | None = None, labels=None, cell: float = 1.2):
    """Show images in a grid; returns the matplotlib Figure.

    Parameters
    ----------
    images : array (N, H, W, C)
        uint8, or float in [0, 1]; C is 3 (colour) or 1 (shown in grey).
    ncols : int
        Images per row.
    title : str, optional
        Figure title: say where the images come from.
    labels : list of str, optional
        One caption per image.
    cell : float
        Size of one image in inches.
    """
    images = as_float(images)
    nrows = max(1, -(-len(images) // ncols))
    ncols = min(ncols, max(1, len(images)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            _imshow(ax, images[i])
            if labels is not None:
                ax.set_title(labels[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_rows(rows: dict, title: str | None = None, cell: float = 1.2):
    """Show aligned rows of images, one row per entry of ``rows`` (name -> images).

    The classic inpainting figure: ``{"original": x, "masked": paint_holes(x, m),
    "inpainted": y}`` puts each face above its masked and filled versions.
    """
    names = list(rows)
    ncols = max(len(rows[name]) for name in names)
    fig, axes = plt.subplots(len(names), ncols, figsize=(cell * ncols + 1.0, cell * len(names) + (0.4 if title else 0)),
                             squeeze=False)
    for r, name in enumerate(names):
        images = as_float(rows[name])
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                _imshow(ax, images[c])
        axes[r, 0].set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_monitor(monitor: dict, title: str | None = None, rows: int = 6, cell: float = 1.0):
    """Show a training monitor (:func:`inpaintlib.checkpoints.read_monitor`): the masked faces,
    then their fills at up to ``rows`` checkpoints spread over the run, then the real faces."""
    steps, fills = monitor["steps"], monitor["fills"]
    shown = np.unique(np.linspace(0, len(steps) - 1, min(rows, len(steps))).round().astype(int))
    grid = {"masked": paint_holes(monitor["images"], monitor["masks"])}
    grid.update({f"step {steps[i]}": fills[i] for i in shown})
    grid["real"] = monitor["images"]
    return show_rows(grid, title=title, cell=cell)


def curve(history: list[dict], key: str) -> tuple[list, list]:
    """The steps and values of one logged quantity: a training loss from every logged point (the
    rows' ``"log"``, a mean every few steps), a validation score (``val_...``) from each row."""
    points = history
    if not key.startswith("val_") and any(row.get("log") for row in history):
        points = [point for row in history for point in row.get("log", [])]
    values = [point.get(key) for point in points]
    return [point["step"] for point in points], [np.nan if v is None else v for v in values]


def plot_history(history: list[dict], keys=("loss", "val_loss"), title: str | None = None, log: bool = True):
    """Plot training curves from a history (rows with a ``step`` and the logged values)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key in keys:
        steps, values = curve(history, key)
        if not np.isnan(values).all():
            ax.plot(steps, values, marker="o" if key.startswith("val_") else None, markersize=3, label=key)
    ax.set_xlabel("training step")
    if log:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_components(history: list[dict], keys, title: str | None = None, columns: int = 3):
    """Small multiples: one panel per logged value, training and validation, against the step.

    For models that log several losses (the VAE-GAN), where one shared axis
    would hide the small ones under the large.
    """
    keys = [key for key in keys if any(row.get(key) is not None for row in history)]
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, style, marker in ((key, "-", None), (f"val_{key}", "--", "o")):
            steps, values = curve(history, name)
            if not np.isnan(values).all():
                ax.plot(steps, values, style, marker=marker, markersize=2,
                        label="validation" if name.startswith("val_") else "training")
        ax.set_title(key, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("training step", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_intervals(summary, metric: str, title: str | None = None):
    """Grouped bars: one group per condition, one bar per method, with its 95% interval.

    ``summary`` is a pandas DataFrame with columns ``condition``, ``method``,
    ``metric``, ``mean``, ``low`` and ``high`` (a bootstrap interval of the mean).
    """
    rows = summary[summary["metric"] == metric]
    conditions, methods = list(dict.fromkeys(rows["condition"])), list(dict.fromkeys(rows["method"]))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(conditions)), 3.4))
    for i, method in enumerate(methods):
        ours = rows[rows["method"] == method].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + (i - (len(methods) - 1) / 2) * width
        ax.bar(x, ours["mean"], width, label=method,
               yerr=[ours["mean"] - ours["low"], ours["high"] - ours["mean"]], capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(conditions)), conditions, fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(methods), 6), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10, pad=24)
    fig.tight_layout()
    return fig


def show_source(obj):
    """The source code of a library function or class, for a chapter to show.

    Returned as a Markdown code block, so the book highlights it like any other code
    and the reader sees the library's own lines, never a pasted copy.
    """
    from IPython.display import Markdown

    return Markdown(f"```python\n{inspect.getsource(obj)}```")


def _imshow(ax, image) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image)
