#!/usr/bin/env python3
"""Where a segmentation's wrong pixels lie against the labels, and whether a sub-pixel shift of the
prediction would fix them (docs/RESULTS.md, "Why 0.81 is out of reach").

Usage:
  python3 tools/label_boundary_errors.py PROBS.tif LABELS.tif [--slices A-B] [--band PX]

PROBS.tif is `unet predict`'s output (cell probability per pixel, one page per slice), LABELS.tif
the ISBI labels (255 = cell, 0 = membrane); pages are compared at the same indices. For each slice
it prints the mean Jaccard of the prediction thresholded at 0.5 and the best mean Jaccard over
shifts of the probabilities by -1.5...+1.5 px in steps of 0.25 (bilinear, mirrored borders) with
that shift; then, over all the slices, the share of wrong pixels within --band pixels (default 2)
of a label boundary, and the share of all pixels in that band. Needs numpy, scipy and tifffile. Exit 2 on unreadable or mismatched files.
"""
import argparse
import sys

import numpy as np
import tifffile
from scipy import ndimage


def mean_jaccard(cell_prediction, cell_label):
    membrane = np.sum(~cell_prediction & ~cell_label) / max(1, np.sum(~cell_prediction | ~cell_label))
    cell = np.sum(cell_prediction & cell_label) / max(1, np.sum(cell_prediction | cell_label))
    return (membrane + cell) / 2


def slice_range(text):
    first, _, last = text.partition("-")
    a, b = int(first), int(last or first)
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"{text}: expected A-B with 0 <= A <= B")
    return range(a, b + 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probabilities")
    parser.add_argument("labels")
    parser.add_argument("--slices", type=slice_range, default=None, help="0-based, inclusive (default: all)")
    parser.add_argument("--band", type=int, default=2, help="pixels either side of a label boundary")
    args = parser.parse_args()
    try:
        probabilities = tifffile.imread(args.probabilities)
        labels = tifffile.imread(args.labels) > 127
        if probabilities.ndim == 2: probabilities = probabilities[None]
        if labels.ndim == 2: labels = labels[None]
    except (OSError, ValueError) as error:
        print(f"label_boundary_errors: {error}", file=sys.stderr)
        return 2
    if probabilities.shape != labels.shape:
        print(f"label_boundary_errors: {args.probabilities} has shape {probabilities.shape}, {args.labels} {labels.shape}", file=sys.stderr)
        return 2
    slices = args.slices or range(len(labels))
    if slices[-1] >= len(labels):
        print(f"label_boundary_errors: slice {slices[-1]} is past the {len(labels)} pages", file=sys.stderr)
        return 2
    shifts = np.arange(-1.5, 1.51, 0.25)
    wrong = near = banded = total = 0
    plain_scores, shifted_scores = [], []
    for z in slices:
        p, label = probabilities[z], labels[z]
        plain = mean_jaccard(p > 0.5, label)
        best = (plain, 0.0, 0.0)
        for dy in shifts:
            for dx in shifts:
                score = mean_jaccard(ndimage.shift(p, (dy, dx), order=1, mode="mirror") > 0.5, label)
                if score > best[0]:
                    best = (score, dy, dx)
        plain_scores.append(plain)
        shifted_scores.append(best[0])
        print(f"slice {z}: mean Jaccard {plain:.4f}; best shift dy {best[1]:+.2f} dx {best[2]:+.2f}: {best[0]:.4f}")
        boundary = label ^ ndimage.binary_erosion(label, border_value=1)
        band = ndimage.binary_dilation(boundary, iterations=args.band) if args.band > 0 else boundary
        errors = (p > 0.5) != label
        wrong += int(errors.sum())
        near += int((errors & band).sum())
        banded += int(band.sum())
        total += band.size
    print(f"mean over the slices: {np.mean(plain_scores):.4f}; with each slice's best shift: {np.mean(shifted_scores):.4f}")
    print(f"wrong pixels: {wrong}, of which within {args.band} px of a label boundary: {near} ({100 * near / max(1, wrong):.1f} %); "
          f"that band holds {100 * banded / max(1, total):.1f} % of all pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
