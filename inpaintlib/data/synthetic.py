"""Procedural cartoon portraits: the offline stand-in for CelebA.

Every face takes its parameters from its own generator, keyed by
``(seed, index)``, so face ``i`` of a stream never depends on how the stream
is sliced. Shapes are signed-distance-like fields with a soft edge one pixel
wide (anti-aliasing), alpha-composited back to front, and a chunk of faces is
rendered at once by broadcasting over ``(chunk, H, W)``. Coordinates live in
``[-1, 1]``, so a face looks the same at 32, 64 or 128 pixels.
"""

import numpy as np

_CHUNK_PIXELS = 16 * 64 * 64  # pixels per render: float32 fields of 256 KiB stay in cache
_N_UNIFORM = 64  # uniforms per face; a fixed count keeps each face's noise draw in place


def _rgb(*rows):
    """8-bit RGB triples -> float32 in [0, 1]."""
    return np.array(rows, np.float32) / 255


# Skin is interpolated along this light-to-dark ramp.
_SKIN = _rgb((255, 226, 200), (241, 194, 167), (224, 172, 138), (198, 134, 96),
             (160, 105, 70), (118, 76, 50), (82, 54, 40))
# Black, dark brown, brown, blond, red, grey.
_HAIR = _rgb((24, 20, 20), (58, 38, 28), (105, 70, 42),
             (214, 178, 118), (150, 66, 34), (168, 166, 162))
_HAIR_P = [0.24, 0.26, 0.2, 0.14, 0.07, 0.09]
# Brown, dark brown, blue, green, hazel, grey.
_IRIS = _rgb((92, 56, 30), (48, 30, 20), (70, 112, 165),
             (78, 112, 70), (125, 96, 50), (112, 122, 132))
_IRIS_P = [0.3, 0.3, 0.15, 0.08, 0.1, 0.07]


def _params(U):
    """Map a (B, _N_UNIFORM) block of uniforms to named per-face parameters."""
    cols = iter(U.T)

    def r(lo, hi):  # one uniform per face, scaled to [lo, hi)
        return np.float32(lo) + np.float32(hi - lo) * next(cols)

    def rgb(lo, hi):
        return np.stack([r(lo, hi) for _ in range(3)], 1)

    def pick(palette, probs):
        return palette[np.searchsorted(np.cumsum(probs)[:-1], next(cols), side="right")]

    t = r(0, 1) ** 1.5 * (len(_SKIN) - 1)  # lean light, as CelebA does
    skin = np.stack([np.interp(t, np.arange(len(_SKIN)), ch) for ch in _SKIN.T], 1)
    p = dict(
        skin=(skin * rgb(0.95, 1.05)).astype(np.float32),
        hair=pick(_HAIR, _HAIR_P) * r(0.8, 1.15)[:, None], iris=pick(_IRIS, _IRIS_P),
        bg1=rgb(0.1, 0.95), bg2=rgb(0.1, 0.95), bg_sat=r(0.2, 0.8), bg_angle=r(0, 2 * np.pi),
        clothes=rgb(0.08, 0.9), shoulder=r(0.8, 1.0),
        tx=r(-0.04, 0.04), ty=r(-0.03, 0.05), scale=r(0.94, 1.06), roll=r(-0.1, 0.1),
        light=r(0, 2 * np.pi), ramp=r(0.0, 0.25), face_light=r(0.05, 0.25),
        fcy=r(0.0, 0.05), frx=r(0.44, 0.51), fry=r(0.56, 0.64), jaw=r(0.15, 0.35),
        neck=r(0.2, 0.26),
        ey=r(-0.16, -0.12), es=r(0.18, 0.22), erx=r(0.08, 0.1), ery=r(0.038, 0.05),
        iris_r=r(0.8, 1.05), gaze=r(-0.008, 0.008),
        brow_y=r(0.08, 0.11), brow_x=r(-0.005, 0.02), brow_rx=r(0.08, 0.11),
        brow_t=r(0.018, 0.032), brow_tilt=r(-0.3, 0.3), brow_arch=r(0.0, 2.5),
        ny=r(0.1, 0.16), nw=r(0.03, 0.045),
        my=r(0.3, 0.36), mw=r(0.13, 0.19), lip_h=r(0.03, 0.05), smile=r(-0.6, 3.0),
        open=(r(0, 1) < 0.3).astype(np.float32), lip_mix=r(0.25, 0.6),
        long=(r(0, 1) < 0.45).astype(np.float32), fringe=(r(0, 1) < 0.35).astype(np.float32),
        volume=r(1.04, 1.16), length=r(0.15, 0.6), hairline=r(0.58, 0.68),
        part=r(-0.15, 0.15), jag=r(0, 2 * np.pi), noise=r(0.004, 0.02))
    p["lips"] = (p["skin"] + p["lip_mix"][:, None] * (_rgb((200, 70, 85)) - p["skin"])) * 0.85
    for k in ("bg1", "bg2", "clothes"):  # pull towards grey: muted, photo-like colours
        grey = p[k].mean(1, keepdims=True)
        p[k] = grey + p["bg_sat"][:, None] * (p[k] - grey)
    return p


def _b(a):
    """Per-face values (B,) -> (B, 1, 1); colours (B, 3) -> (3, B, 1, 1).

    Images are rendered channel-first, (3, B, H, W), so every operation runs
    over long contiguous rows instead of an inner axis of length 3.
    """
    return a[:, None, None] if a.ndim == 1 else a.T[:, :, None, None]


def _ellipse(x, y, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse (negative inside).

    First order, f / |grad f| with f = (x/rx)^2 + (y/ry)^2 - 1: exact enough
    within the one-pixel edge, which is all the anti-aliasing needs.
    """
    x2, y2 = x * x, y * y
    f = x2 / (rx * rx) + y2 / (ry * ry) - 1
    g = np.sqrt(x2 / rx**4 + y2 / ry**4)
    return f / np.maximum(2 * g, 1e-6)


def _composite(img, win, alpha, color):
    """Blend ``color`` (3, ...) over the ``win`` part of ``img`` (3, B, H, W), in place."""
    view = img[(slice(None),) + win]
    color = np.subtract(np.reshape(color, (3, 1, 1, 1)) if np.ndim(color) == 1 else color, view)
    color *= alpha
    view += color


def _box(S, x0, x1, y0, y1):
    """Index (faces, rows, cols) of the pixels in the image-space box [x0, x1] x [y0, y1].

    The box grows by two pixels on each side, for the soft edges; below 16
    pixels a pixel is too coarse to bound them, so the box is the whole frame.
    """
    if S < 16:
        return (slice(None),) * 3

    def span(a, b):
        return slice(max(int((a + 1) * S / 2) - 2, 0), min(int(np.ceil((b + 1) * S / 2)) + 2, S))

    return (slice(None), span(y0, y1), span(x0, x1))


def _render(U, noise, S):
    """Faces for a block of uniforms U (B, _N_UNIFORM) and noise (3, B, S, S) -> uint8."""
    p = _params(U)
    grid = (np.arange(S, dtype=np.float32) + 0.5) * np.float32(2 / S) - 1  # pixel centres
    X, Y = grid[None, None, :], grid[None, :, None]

    # Background: two-colour gradient along a random direction.
    a = p["bg_angle"]
    t = np.clip(_b(0.5 * np.cos(a)) * X + (_b(0.5 * np.sin(a)) * Y + 0.5), 0, 1)
    img = _b(p["bg1"]) + t * _b(p["bg2"] - p["bg1"])  # (3, B, S, S)

    # Face frame (u, v): undo the pose (shift, roll, scale), so features use fixed coordinates.
    c, s = _b(np.cos(p["roll"]) / p["scale"]), _b(np.sin(p["roll"]) / p["scale"])
    dx, dy = X - _b(p["tx"]), Y - _b(p["ty"])
    u, v = dx * c + dy * s, dy * c - dx * s
    inv_pix = _b(p["scale"]) * np.float32(S / 2)  # face units -> pixels

    def alpha(d):  # coverage of a pixel at signed distance d: a one-pixel ramp
        return np.clip(0.5 - d * inv_pix, 0, 1)

    def at(x0, x1, y0, y1):
        # A layer is only evaluated inside an image box that bounds it under any
        # pose, which skips most of the frame for most layers.
        w = _box(S, x0, x1, y0, y1)
        return w, u[w], v[w]

    skin, hair, fcy = _b(p["skin"]), _b(p["hair"]), _b(p["fcy"])
    frx, fry, long = _b(p["frx"]), _b(p["fry"]), _b(p["long"])
    lx, ly = _b(np.cos(p["light"])), _b(np.sin(p["light"]))
    # Faint hair strands, one image-space pattern shared by all faces (cheap), faded
    # out below 64 pixels where they would alias.
    strands = 1 + 0.05 * min(max(S / 32 - 1, 0), 1) * np.sin(55 * X + 6 * Y)
    cap_cy, cap_rx, cap_ry = fcy - 0.05, frx * _b(p["volume"]) + 0.02, fry * _b(p["volume"])

    # Back to front: clothes, long hair, neck, ears, face.
    w, uw, vw = at(-1, 1, 0.4, 1)
    shoulders = _ellipse(uw, vw - 1.22, _b(p["shoulder"]), 0.45)
    _composite(img, w, alpha(shoulders), _b(p["clothes"]))
    w, uw, vw = at(-0.85, 0.85, -1, 1)
    hem = fcy + fry + _b(p["length"]) - 0.25 * (uw / frx) ** 2  # ends rise towards the sides
    d_fall = np.maximum(np.maximum(np.abs(uw) - cap_rx * 1.02, vw - hem), cap_cy - vw)
    d_long = np.minimum(_ellipse(uw, vw - cap_cy, cap_rx, cap_ry), d_fall)
    _composite(img, w, alpha(d_long) * long, hair * strands[w])
    w, uw, vw = at(-0.5, 0.5, 0.05, 1)
    neck = np.maximum(np.abs(uw) - _b(p["neck"]), fcy + 0.2 - vw)
    _composite(img, w, alpha(neck), skin * 0.78)
    w, uw, vw = at(-0.75, 0.75, -0.4, 0.2)
    ears = alpha(_ellipse(np.abs(uw) - frx * 0.97, vw - _b(p["ey"]) - 0.07, 0.05, 0.09))
    _composite(img, w, ears * (1 - long), skin * 0.9)  # long hair hides the ears
    w, uw, vw = at(-0.72, 0.72, -0.85, 0.92)
    vf = vw - fcy
    jaw = 1 - _b(p["jaw"]) * np.clip(vf / fry, 0, 1) ** 2  # narrower towards the chin
    rad2 = (uw / (frx * jaw)) ** 2 + (vf / fry) ** 2
    shade = 1 - 0.25 * np.minimum(rad2, 1) ** 2 + _b(p["face_light"]) * (uw * lx + vw * ly)
    _composite(img, w, alpha(_ellipse(uw, vf, frx * jaw, fry)), skin * shade)

    # Eyes: white, iris and pupil clipped to the white, then a dark upper lash line.
    # Eyes, brows and nostrils come in mirror pairs: |u| draws one and gets both.
    w, uw, vw = at(-0.55, 0.55, -0.55, 0.08)
    ue, ve = np.abs(uw) - _b(p["es"]), vw - _b(p["ey"])
    d_eye = _ellipse(ue, ve, _b(p["erx"]), _b(p["ery"]))
    a_eye = alpha(d_eye)
    _composite(img, w, a_eye, _rgb(236, 234, 228))
    d_iris = np.sqrt(ue**2 + (ve - _b(p["gaze"])) ** 2)
    ir = _b(p["ery"] * p["iris_r"])
    _composite(img, w, alpha(d_iris - ir) * a_eye, _b(p["iris"]))
    _composite(img, w, alpha(d_iris - 0.45 * ir) * a_eye, _rgb(12, 10, 10))
    lash = alpha(np.abs(d_eye) - 0.006) * (ve < 0.2 * _b(p["ery"]))
    _composite(img, w, lash, _rgb(30, 22, 20))

    # Eyebrows: thick, tilted, arched ellipses, darker than the hair.
    ub = np.abs(uw) - _b(p["es"] + p["brow_x"])
    vb = vw - _b(p["ey"] - p["brow_y"]) + _b(p["brow_tilt"]) * ub - _b(p["brow_arch"]) * ub**2
    brow = alpha(_ellipse(ub, vb, _b(p["brow_rx"]), _b(p["brow_t"])))
    _composite(img, w, 0.9 * brow, hair * 0.55 + 0.02)

    # Nose: a soft shadow on the side away from the light, and two nostrils.
    w, uw, vw = at(-0.3, 0.3, -0.25, 0.4)
    ny = _b(p["ny"])
    side = np.exp(-(((uw + lx * 0.045) / 0.025) ** 2) - ((vw - ny + 0.06) / 0.08) ** 2)
    _composite(img, w, 0.35 * side, skin * 0.7)
    nostrils = alpha(_ellipse(np.abs(uw) - _b(p["nw"]), vw - ny, 0.018, 0.011))
    _composite(img, w, 0.7 * nostrils, skin * 0.4)

    # Mouth: lips bent by the smile curve; a closed line, or open with teeth.
    w, uw, vw = at(-0.4, 0.4, -0.05, 0.65)
    vm = vw - _b(p["my"]) + _b(p["smile"]) * uw**2
    mw, lh, op = _b(p["mw"]), _b(p["lip_h"]), _b(p["open"])
    a_lips = alpha(_ellipse(uw, vm, mw, lh))
    _composite(img, w, a_lips, _b(p["lips"]))
    _composite(img, w, a_lips * (1 - op) * alpha(np.abs(vm) - 0.006), _b(p["lips"]) * 0.45)
    a_in = alpha(_ellipse(uw, vm, mw * 0.8, lh * 0.7)) * op
    _composite(img, w, a_in, _rgb(70, 20, 25))
    _composite(img, w, a_in * alpha(vm + lh * 0.15), _rgb(235, 232, 220))

    # Hair on top of the head, cut by a hairline that dips at the temples;
    # a fringe lowers it and gives it a jagged edge.
    w, uw, vw = at(-0.85, 0.85, -1, 0.45)
    ur, fringe = uw / frx, _b(p["fringe"])
    hl = fcy - fry * (_b(p["hairline"]) - 0.05 * fringe) + 0.22 * ur**2 + _b(p["part"]) * uw
    hl = hl + fringe * (0.035 * np.abs(np.sin(9 * ur + _b(p["jag"]))) - 0.18 * ur**2)
    d_cap = np.maximum(_ellipse(uw, vw - cap_cy, cap_rx, cap_ry), vw - hl)
    _composite(img, w, alpha(d_cap), hair * strands[w])

    # Global light ramp, sensor noise (uniform, unit variance), quantise.
    img *= 1 + _b(p["ramp"]) * (X * lx + Y * ly)
    img += _b(p["noise"] * np.sqrt(12, dtype=np.float32)) * (noise - 0.5)
    img *= 255
    img += 0.5  # round to nearest: the cast below truncates
    return np.clip(img, 0, 255, out=img).astype(np.uint8).transpose(1, 2, 3, 0)


def synthetic_faces(n: int, image_size: int = 64, seed: int = 0, start: int = 0) -> np.ndarray:
    """Render procedural cartoon portraits, an offline stand-in for CelebA.

    Faces are centred like aligned CelebA crops (the face fills about the
    middle 60% of the frame, eyes at about 42% of the height) and vary in
    skin tone, face shape, hair colour and style, eyes, brows, nose, mouth,
    background, lighting, pose and sensor noise.

    Parameters
    ----------
    n : int
        Number of faces, ``>= 0``.
    image_size : int, default 64
        Side of the square images in pixels, ``>= 8``.
    seed : int, default 0
        Seed of the stream of faces, ``>= 0``.
    start : int, default 0
        Index of the first face in the stream, ``>= 0``. Face ``i`` depends
        only on ``(seed, i, image_size)``, never on ``n`` or ``start``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(n, image_size, image_size, 3)``: faces
        ``start`` .. ``start + n - 1`` of the stream for ``seed``.

    Raises
    ------
    ValueError
        If an argument is not an integer or is below its minimum.

    Examples
    --------
    >>> faces = synthetic_faces(10, seed=3)
    >>> faces.shape, faces.dtype
    ((10, 64, 64, 3), dtype('uint8'))
    >>> bool((faces[5] == synthetic_faces(1, seed=3, start=5)[0]).all())
    True
    """
    for name, value, low in (("n", n, 0), ("image_size", image_size, 8),
                             ("seed", seed, 0), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    n, S, seed, start = int(n), int(image_size), int(seed), int(start)
    out = np.empty((n, S, S, 3), np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (S * S))
    for c0 in range(0, n, chunk):
        idx = range(start + c0, start + min(c0 + chunk, n))
        U = np.empty((len(idx), _N_UNIFORM), np.float32)
        noise = np.empty((3, len(idx), S, S), np.float32)
        for j, i in enumerate(idx):
            rng = np.random.default_rng([seed, i])  # one stream per face, keyed by its index
            U[j] = rng.random(_N_UNIFORM)
            noise[:, j] = rng.random((3, S, S), dtype=np.float32)
        out[c0 : c0 + len(idx)] = _render(U, noise, S)
    return out
