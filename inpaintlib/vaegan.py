"""The VAE-GAN inpainter (Larsen et al., 2016), a conditional VAE whose code carries the hole.

Four networks:

- the **prior network** (``encoder``) maps the visible face (the masked image
  and its mask) to a Gaussian over a latent code z, the learned prior
  p(z | visible face), and to its feature maps at every resolution;
- the **posterior network** (``posterior``, with ``posterior="whole"``, the
  default) maps the *whole* face and the mask to q(z | whole face): in training
  it sees what is missing, so z can carry what the visible face does not tell,
  and KL(q || p) teaches the prior to predict it (a conditional VAE, Sohn et al.
  2015, as in BicycleGAN and Pluralistic Image Completion). With
  ``posterior="visible"`` (the first design) q is the prior network's own
  Gaussian and p is N(0, I): z then knows nothing the decoder's skips do not
  already give it, the pixel loss is smallest when the decoder ignores z, and
  the draws barely differ (chapter 3 measures both);
- the **decoder** maps z to a full image. With ``image_skips`` (the default) it
  also receives the prior network's maps, as a U-Net decoder does, so z only
  has to carry what the hole needs; without them it rebuilds the whole face
  from z alone, as in Larsen et al. With ``smooth_start`` (the default) the
  prior network sees the hole smooth-filled (:class:`~inpaintlib.smooth_fill.SmoothFill`)
  and the decoder adds a correction, zero at the start, to that fill's logit;
- the **discriminator** tells real faces from composited fills: one logit for
  the whole image (``"global"``), one per local patch
  (``"patch"``, pix2pix's PatchGAN; patches whose cell holds no hole pixel are
  real, so only the others count as fakes), or the whole image and a crop around the
  hole (``"global+local"``, Iizuka et al. 2017); it also returns an
  intermediate feature map.

The losses, each logged on its own:

- ``kl``: KL(q || p) per pixel, the ELBO's prior term;
- ``feature``: squared error between the discriminator's features of the real
  face and of the fill from q, the learned similarity that replaces pixel error
  in Larsen et al.: it measures how a fill *looks*, so it tolerates a hair strand
  a pixel off where a pixel loss would ask for a blur;
- ``pixel``: L1 error of the fill from q, the hole weighted ``hole_weight`` times
  more than the known pixels, which keeps the fill anchored to the face;
- ``mean_fill``: the same pixel loss on the fill of the prior's mean code, the
  single most likely fill that the model returns when called (weighted
  ``mean_fill_weight``). The pixel loss above trains the decoder on codes from
  q, which has seen the hole; nothing else asks the fill from the prior's
  mean, which has not, to be a good single guess. On the validation faces
  (``bench/vaegan_designs.py``, three seeds) it raised a draw's hole PSNR on
  large centre holes and its face scores, and narrowed the draws' spread;
- ``adversarial``: the non-saturating GAN loss -log D(fill) on fills from q and
  from p (Goodfellow et al., 2014), so that the draws a reader sees, from p, are
  realistic too; it still has gradient when the discriminator wins, where the
  minimax log(1 - D) does not. Its weight, 0.1 by default, was chosen on the
  validation faces (``bench/vaegan_designs.py``): at 0.3 the most likely fill
  sat over a decibel of hole PSNR further from the face, and over three seeds
  the draws at 0.1 were as face-like as they had been at 0.3;
- ``discriminator``: cross-entropy with one-sided label smoothing (real faces
  labelled ``real_label`` = 0.9), which keeps the discriminator from growing
  overconfident and its gradients from vanishing.

The KL is divided by the image's pixels, so a code dimension that the decoder ignores can let its
prior widen almost for free, and a draw then lands far outside the codes the decoder was trained
on. ``max_std`` bounds both Gaussians' standard deviation, smoothly (the log-variance passes through
a shifted log-sigmoid); it is off by default. Measured on the validation faces
(``bench/vaegan_designs.py``, one seed, 600 steps, large centre holes), it matters under the
``cosine`` schedule: unbounded, the prior's spread averaged 50 over the code (median 1.3), and a
draw at temperature 0.5 fell 7 dB of hole PSNR below the mean code's fill; bounded at 3, a draw
stayed within 0.8 dB of it. It is not free, and so not the default: at a constant rate the draws'
diversity fell from 0.064 unbounded to 0.020 at 3 and 0.008 at 1, and at 2400 steps under the
cosine schedule the mean code's fill was 1.6 dB worse bounded at 3 than unbounded (one seed each).

Departures from Larsen et al.: the generator's losses are summed into one
(their encoder, decoder and discriminator each take a different mix), and the
pixel loss on the hole stays beside the learned similarity.

One Keras model with its own ``train_step`` and ``test_step``: ``fit``, the
progress bar, the checkpoints and the NaN guard of :mod:`inpaintlib.training`
work as they do for the U-Net. The generator (prior network, posterior network
and decoder) and the discriminator each have their own Adam optimizers
(beta_1 = 0.5, the usual choice for GANs since DCGAN).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from inpaintlib.config import DEFAULT_LEARNING_RATES, DEFAULT_TEMPERATURE
from inpaintlib.errors import ConfigError
from inpaintlib import smooth_fill
from inpaintlib.smooth_fill import corrected_fill

#: Seed of the prior codes that evaluation (``test_step``) decodes.
EVAL_NOISE_SEED = 2016
#: Where q(z | ...) looks in training, the whole face (a conditional VAE) or the visible face alone.
POSTERIORS = ("whole", "visible")
#: The discriminators to choose from (see the module docstring).
DISCRIMINATORS = ("global", "patch", "global+local")


def build_vaegan(
    image_size: int = 64,
    latent_dim: int = 128,
    base_filters: int = 32,
    depth: int = 4,
    image_skips: bool = True,
    posterior: str = "whole",
    smooth_start: bool = True,
    discriminator: str = "global",
    kl_weight: float = 1.0,
    feature_weight: float = 1.0,
    pixel_weight: float = 1.0,
    mean_fill_weight: float = 0.3,
    hole_weight: float = 6.0,
    adversarial_weight: float = 0.1,
    real_label: float = 0.9,
    weight_average: float = 0.99,
    smooth_refine_steps: int = 0,
    max_std: float | None = None,
) -> VAEGAN:
    """Build (uncompiled) a VAE-GAN inpainter.

    Parameters
    ----------
    image_size : int
        Side of the square images; divisible by ``2 ** depth``.
    latent_dim : int
        Length of the latent code z.
    base_filters : int
        Filters of the first strided convolution; each level down doubles them.
    depth : int
        Strided convolutions in the encoders and discriminator (64 -> 4 pixels at depth 4).
    image_skips : bool
        Give the decoder the prior network's feature maps (True) or z alone (False).
    posterior : str
        ``"whole"``: q(z | whole face) with a learned prior p(z | visible face);
        ``"visible"``: q(z | visible face) with the prior N(0, I), the first design.
    smooth_start : bool
        Start from a smooth fill of the hole and learn its correction (needs ``image_skips``).
    discriminator : str
        ``"global"``, ``"patch"`` or ``"global+local"`` (see the module docstring).
    kl_weight, feature_weight, pixel_weight, adversarial_weight : float
        Weights of the generator's losses (see the module docstring).
    mean_fill_weight : float
        Weight of the pixel loss on the mean code's fill (see ``mean_fill`` in the module docstring).
    hole_weight : float
        How much more a hole pixel counts than a known one in the pixel losses.
    real_label : float
        Target of real faces in the discriminator's loss (1.0: no label smoothing).
    weight_average : float
        Momentum of the moving average of the generator's weights that the
        trained model fills with (0: the last step's weights).
    smooth_refine_steps : int
        The smooth fill's ``refine_steps`` (:class:`~inpaintlib.smooth_fill.SmoothFill`), with ``smooth_start``.
    max_std : float or None
        The most each Gaussian's standard deviation can grow to (see the module docstring); None: no bound.

    Returns
    -------
    VAEGAN

    Examples
    --------
    >>> model = build_vaegan(image_size=32, latent_dim=8, base_filters=8, depth=3)
    >>> [net.name for net in model.networks]
    ['encoder', 'posterior', 'decoder', 'discriminator']
    """
    return VAEGAN(
        image_size=image_size, latent_dim=latent_dim, base_filters=base_filters, depth=depth,
        image_skips=image_skips, posterior=posterior, smooth_start=smooth_start, discriminator=discriminator,
        kl_weight=kl_weight, feature_weight=feature_weight, pixel_weight=pixel_weight,
        mean_fill_weight=mean_fill_weight, hole_weight=hole_weight,
        adversarial_weight=adversarial_weight, real_label=real_label, weight_average=weight_average,
        smooth_refine_steps=smooth_refine_steps, max_std=max_std,
    )


def _down(x, base_filters: int, levels: int, prefix: str = "") -> list:
    """The strided 4x4 convolutions of the encoders and the discriminator: their maps, largest first."""
    maps = []
    for level in range(levels):
        x = layers.Conv2D(base_filters * 2**level, 4, strides=2, padding="same", name=f"{prefix}down{level}")(x)
        x = layers.LeakyReLU(0.2, name=f"{prefix}down{level}_act")(x)
        maps.append(x)
    return maps


def _gaussian(x, latent_dim: int, prefix: str = "", max_std: float | None = None):
    """A diagonal Gaussian's mean and log-variance, the log-variance below ``2 log max_std``, smoothly."""
    x = layers.Flatten(name=f"{prefix}flatten")(x)
    mean = layers.Dense(latent_dim, name=f"{prefix}z_mean")(x)
    if max_std is None:
        return mean, layers.Dense(latent_dim, name=f"{prefix}z_log_var")(x)
    # ceiling + log_sigmoid(a) < ceiling, and close to ceiling + a well below it. The bias starts
    # at -ceiling, so that an untrained network's variance is about 1, as an unbounded one's.
    ceiling = 2.0 * float(np.log(max_std))
    log_var = layers.Dense(latent_dim, activation="log_sigmoid", bias_initializer=keras.initializers.Constant(-ceiling),
                           name=f"{prefix}z_log_var")(x)
    return mean, layers.Rescaling(1.0, offset=ceiling, name=f"{prefix}z_log_var_ceiling")(log_var)


def build_encoder(image_size: int, latent_dim: int, base_filters: int, depth: int,
                  smooth_start: bool = False, smooth_refine_steps: int = 0,
                  max_std: float | None = None) -> keras.Model:
    """The prior network: (masked image, mask) -> (z mean, z log-variance, feature maps from full size
    down to the bottom). The first map is the network's input: the image (smooth-filled with
    ``smooth_start``) and the mask."""
    masked_image = keras.Input((image_size, image_size, 3), name="masked_image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    start = smooth_fill.smooth_start(masked_image, mask, smooth_start, smooth_refine_steps)
    x = layers.Concatenate(name="image_and_mask")([start, mask])
    maps = [x, *_down(x, base_filters, depth)]
    mean, log_var = _gaussian(maps[-1], latent_dim, max_std=max_std)
    return keras.Model([masked_image, mask], [mean, log_var, *maps], name="encoder")


def build_posterior(image_size: int, latent_dim: int, base_filters: int, depth: int,
                    max_std: float | None = None) -> keras.Model:
    """The posterior network: (whole image, mask) -> (z mean, z log-variance). Training only."""
    image = keras.Input((image_size, image_size, 3), name="image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    # Its own layer names, so that its weights' paths differ from the prior network's.
    x = layers.Concatenate(name="posterior_image_and_mask")([image, mask])
    mean, log_var = _gaussian(_down(x, base_filters, depth, prefix="posterior_")[-1], latent_dim, prefix="posterior_",
                              max_std=max_std)
    return keras.Model([image, mask], [mean, log_var], name="posterior")


def build_decoder(image_size: int, latent_dim: int, base_filters: int, depth: int, image_skips: bool,
                  smooth_start: bool = False) -> keras.Model:
    """z (and, with ``image_skips``, the prior network's maps, bottom first) -> image in [0, 1], not
    composited. With ``smooth_start`` the last skip's first three channels are the smooth fill,
    whose logit the decoder corrects."""
    bottom = image_size // 2**depth
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    x = layers.Dense(bottom * bottom * base_filters * 2 ** (depth - 1), activation="relu", name="project")(z)
    x = layers.Reshape((bottom, bottom, base_filters * 2 ** (depth - 1)), name="bottom")(x)
    for level in reversed(range(depth + 1)):  # resolutions bottom, ..., full size
        if image_skips:
            size, channels = image_size // 2**level, (base_filters * 2 ** (level - 1) if level else 4)
            skip = keras.Input((size, size, channels), name=f"skip{level}")
            inputs.append(skip)
            x = layers.Concatenate(name=f"up{level}_skip")([x, skip])
        filters = base_filters * 2 ** max(level - 2, 0)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"up{level}_conv")(x)
        if level:
            x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"up{level}_smooth")(x)
    if smooth_start:  # the last skip is the prior network's input: the smooth fill and the mask
        image = corrected_fill(x, inputs[-1][..., :3])
    else:
        image = layers.Conv2D(3, 1, activation="sigmoid", name="image")(x)
    return keras.Model(inputs, image, name="decoder")


def build_discriminator(image_size: int, base_filters: int, depth: int, kind: str = "global") -> keras.Model:
    """(image, mask) -> (logits that it is real, (B, K); the feature map of a middle block).

    ``"global"``: one logit (K = 1); ``"patch"``: one per cell of the map ``depth - 1`` levels
    down, each seeing a patch of 22 pixels at depth 4; ``"global+local"``: the global logit and one for a crop of
    half the side around the hole (K = 2). The mask only places the crop: the networks see images.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    levels = depth - 1 if kind == "patch" else depth
    maps = _down(image, base_filters, levels)
    features = maps[depth - 2]  # Larsen et al. compare images in a middle layer: shapes, not pixels
    if kind == "patch":
        logits = layers.Conv2D(1, 1, name="patch_logits")(maps[-1])
        logits = layers.Reshape((-1,), name="logit")(logits)
    else:
        logits = layers.Dense(1, name="logit")(layers.Flatten(name="flatten")(maps[-1]))
    if kind == "global+local":
        crop = HoleCrop(image_size // 2, name="hole_crop")([image, mask])
        local = _down(crop, base_filters, depth - 1, prefix="local_")[-1]
        local = layers.Dense(1, name="local_logit")(layers.Flatten(name="local_flatten")(local))
        logits = layers.Concatenate(name="logits")([logits, local])
    return keras.Model([image, mask], [logits, features], name="discriminator")


@keras.saving.register_keras_serializable(package="inpaintlib")
class HoleCrop(layers.Layer):
    """The ``size`` x ``size`` window of each image centred on its hole's centroid, kept inside the image."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, inputs):
        images, masks = inputs
        side = tf.shape(images)[1]
        weights = masks[..., 0]
        total = tf.maximum(tf.reduce_sum(weights, axis=[1, 2]), 1.0)
        coords = tf.cast(tf.range(side), images.dtype)
        rows = tf.reduce_sum(weights * coords[None, :, None], axis=[1, 2]) / total
        cols = tf.reduce_sum(weights * coords[None, None, :], axis=[1, 2]) / total
        last = tf.cast(side - self.size, images.dtype)
        top = tf.clip_by_value(tf.round(rows - (self.size - 1) / 2), 0.0, last)
        left = tf.clip_by_value(tf.round(cols - (self.size - 1) / 2), 0.0, last)
        # crop_and_resize samples at whole pixels when a box spans exactly size - 1 pixel steps.
        scale = tf.cast(side - 1, images.dtype)
        boxes = tf.stack([top, left, top + self.size - 1, left + self.size - 1], axis=1) / scale
        return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), (self.size, self.size))

    def compute_output_shape(self, input_shape):
        return input_shape[0][0], self.size, self.size, input_shape[0][3]

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="inpaintlib")
class VAEGAN(keras.Model):
    """Prior network, posterior network, decoder and discriminator, trained together by
    :meth:`.train_step`.

    Called on ``(masked_image, mask)`` it returns the decoder's image for the
    mean of p(z | visible face): the single most likely fill. :meth:`.sample_fills`
    draws several.
    """

    LOSSES = ("loss", "kl", "feature", "pixel", "mean_fill", "adversarial", "discriminator", "d_real", "d_fake")

    def __init__(self, image_size=64, latent_dim=128, base_filters=32, depth=4, image_skips=True, posterior="whole",
                 smooth_start=True, discriminator="global", kl_weight=1.0, feature_weight=1.0, pixel_weight=1.0,
                 mean_fill_weight=0.3, hole_weight=6.0, adversarial_weight=0.1, real_label=0.9, weight_average=0.99,
                 smooth_refine_steps=0, max_std=None, **kwargs):
        super().__init__(**kwargs)
        if depth < 2 or base_filters < 1 or latent_dim < 1:
            raise ConfigError(f"depth must be at least 2, base_filters and latent_dim at least 1, not "
                              f"{depth}, {base_filters} and {latent_dim}")
        if image_size % 2**depth:
            raise ConfigError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}: lower the depth")
        if posterior not in POSTERIORS:
            raise ConfigError(f"unknown posterior {posterior!r}: use one of {', '.join(POSTERIORS)}")
        if discriminator not in DISCRIMINATORS:
            raise ConfigError(f"unknown discriminator {discriminator!r}: use one of {', '.join(DISCRIMINATORS)}")
        if smooth_start and not image_skips:
            raise ConfigError("smooth_start corrects the fill that reaches the decoder through its image skips: "
                              "set smooth_start=False to train without image_skips")
        if not 0.5 < real_label <= 1.0:
            raise ConfigError(f"real_label must be in (0.5, 1], not {real_label}")
        if not 0.0 <= weight_average < 1.0:
            raise ConfigError(f"weight_average must be in [0, 1), not {weight_average}")
        if max_std is not None and not max_std > 0:
            raise ConfigError(f"max_std must be positive, or None for no bound, not {max_std}")
        self.settings = dict(
            image_size=image_size, latent_dim=latent_dim, base_filters=base_filters, depth=depth,
            image_skips=image_skips, posterior=posterior, smooth_start=smooth_start, discriminator=discriminator,
            kl_weight=kl_weight, feature_weight=feature_weight, pixel_weight=pixel_weight,
            mean_fill_weight=mean_fill_weight, hole_weight=hole_weight,
            adversarial_weight=adversarial_weight, real_label=real_label, weight_average=weight_average,
            smooth_refine_steps=smooth_refine_steps, max_std=max_std,
        )
        self.encoder = build_encoder(image_size, latent_dim, base_filters, depth, smooth_start, smooth_refine_steps,
                                     max_std)
        self.posterior = (build_posterior(image_size, latent_dim, base_filters, depth, max_std)
                          if posterior == "whole" else None)
        self.decoder = build_decoder(image_size, latent_dim, base_filters, depth, image_skips, smooth_start)
        self.discriminator = build_discriminator(image_size, base_filters, depth, discriminator)
        # A moving average of the generator's weights: the adversarial game makes the weights
        # oscillate from step to step, and their recent average fills better than wherever the
        # last step happened to land. train() puts it in place when training ends.
        self.averages = [keras.Variable(v, trainable=False, name=f"average_{i}", aggregation="only_first_replica")
                         for i, v in enumerate(self._generator_variables())]
        # The training noise of step t is drawn statelessly from (noise_seed, t): a function of the step
        # count, which checkpoints save with the optimizers, so a resumed run draws what the
        # uninterrupted run drew. (A SeedGenerator's state is not saved with the weights.)
        self.noise_seed = keras.Variable(np.random.randint(2**31 - 1), dtype="int64", trainable=False,
                                         name="noise_seed", aggregation="only_first_replica")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOSSES}
        self.built = True

    @property
    def networks(self) -> list[keras.Model]:
        """The networks, generator first (prior network, posterior network if any, decoder), then the discriminator."""
        return [net for net in (self.encoder, self.posterior, self.decoder, self.discriminator) if net is not None]

    def get_config(self):
        return {**super().get_config(), **self.settings}

    # -- compiling: one Adam per network -------------------------------------------------------

    def compile(self, learning_rate: float = DEFAULT_LEARNING_RATES["vaegan"], beta_1: float = 0.5, jit_compile="auto",
                decay_steps: int | None = None):
        """Create one Adam optimizer per network; with ``decay_steps``, their rate falls along a
        cosine to zero at that step (the ``cosine`` schedule of :class:`~inpaintlib.config.TrainConfig`)."""
        super().compile(optimizer=None, jit_compile=jit_compile)
        self.optimizers = {}
        # A schedule is a function of each optimizer's own step count: one serves them all.
        rate = (keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=decay_steps)
                if decay_steps else learning_rate)
        for net in self.networks:
            optimizer = keras.optimizers.Adam(rate, beta_1=beta_1, name=f"{net.name}_adam")
            optimizer.build(net.trainable_variables)  # now, so a checkpoint can restore its state
            self.optimizers[net.name] = optimizer
        self.compiled_with = {"learning_rate": learning_rate, "beta_1": beta_1, "jit_compile": jit_compile,
                              "decay_steps": decay_steps}

    def average_weights(self):
        """Put the moving averages in place of the generator's weights (once, after training)."""
        for average, variable in zip(self.averages, self._generator_variables()):
            variable.assign(average)

    def get_compile_config(self):
        return getattr(self, "compiled_with", None)

    def compile_from_config(self, config):
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # -- inference -------------------------------------------------------------------------------

    def call(self, inputs, training=False):
        mean, _, *maps = self.encoder(inputs, training=training)
        return self._decode(mean, maps, training)

    def sample_fills(self, masked_images, masks, k: int, seed: int = 0, batch_size: int = 64,
                     temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
        """Decode ``k`` codes drawn from p(z | visible face) for each image: (k, N, S, S, 3), not composited.

        ``temperature`` scales the Gaussian's standard deviation: 1 draws from the prior as
        trained, less moves the draws towards the single most likely fill (0: it alone), more
        spreads them further apart; the default, :data:`~inpaintlib.config.DEFAULT_TEMPERATURE`, was
        chosen on validation faces. (With ``posterior="visible"`` the Gaussian is q(z | visible face),
        the first design's.)
        """
        if not temperature >= 0:
            raise ConfigError(f"temperature must be at least 0, not {temperature!r}")
        masked_images = np.asarray(masked_images, np.float32)
        masks = np.asarray(masks, np.float32)
        rng = np.random.default_rng(seed)
        fills = np.empty((k, *masked_images.shape), np.float32)
        for start in range(0, len(masked_images), batch_size):
            batch = slice(start, start + batch_size)
            mean, log_var, *maps = self.encoder([masked_images[batch], masks[batch]], training=False)
            mean, std = mean.numpy(), temperature * np.exp(0.5 * log_var.numpy())
            for i in range(k):
                z = tf.constant(mean + std * rng.standard_normal(mean.shape, dtype=np.float32))
                fills[i, batch] = self._decode(z, maps, False).numpy()
        return fills

    # -- training --------------------------------------------------------------------------------

    def train_step(self, data):
        """One step of the networks on a batch ``((masked_image, mask), image)``: the generator's
        Adams on the generator's loss, the discriminator's on its own, then the weight average;
        the losses, for ``fit``'s logs."""
        (masked_image, mask), image = data
        generator = self._generator_variables()
        with tf.GradientTape(persistent=True) as tape:
            losses = self._loss_terms(masked_image, mask, image, training=True)
            # Under a distribution strategy each replica's gradients are summed, so scale by 1/replicas.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            generator_loss = losses["loss"] / replicas
            discriminator_loss = losses["discriminator"] / replicas
        generator_gradients = tape.gradient(generator_loss, generator)
        discriminator_gradients = tape.gradient(discriminator_loss, self.discriminator.trainable_variables)
        del tape
        start = 0
        for net in self.networks[:-1]:
            count = len(net.trainable_variables)
            self.optimizers[net.name].apply_gradients(
                zip(generator_gradients[start:start + count], net.trainable_variables))
            start += count
        self.optimizers["discriminator"].apply_gradients(
            zip(discriminator_gradients, self.discriminator.trainable_variables))
        # Warm-up as in tf.train.ExponentialMovingAverage: early steps do not drag the initial weights along.
        step = tf.cast(self.optimizers["decoder"].iterations, "float32")
        decay = tf.minimum(self.settings["weight_average"], (1.0 + step) / (10.0 + step))
        for average, variable in zip(self.averages, generator):
            average.assign(decay * average + (1.0 - decay) * variable)
        return self._track(losses)

    def test_step(self, data):
        (masked_image, mask), image = data
        return self._track(self._loss_terms(masked_image, mask, image, training=False))

    def _noise_seeds(self, training: bool):
        """Two stateless seeds, for the posterior's noise and the prior's codes.

        In training they follow the step count (and the replica, so that the devices of a
        distributed run draw different noise); evaluation uses a fixed seed of its own, so that
        validation passes neither move with the training noise nor shift it.
        """
        if not training:
            return tf.random.experimental.stateless_split(tf.constant([EVAL_NOISE_SEED, 0], tf.int64), 2)
        step = tf.cast(self.optimizers["decoder"].iterations, tf.int64)
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        base = tf.stack([tf.convert_to_tensor(self.noise_seed.value, tf.int64) + replica, step])
        return tf.random.experimental.stateless_split(base, 2)

    def _generator_variables(self):
        return [v for net in self.networks[:-1] for v in net.trainable_variables]

    def _track(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _decode(self, z, maps, training):
        skips = maps[::-1] if self.settings["image_skips"] else []
        return self.decoder([z, *skips], training=training)

    def _loss_terms(self, masked_image, mask, image, training: bool) -> dict:
        """Every loss of one batch. In training the code from q is sampled; in evaluation it is q's mean."""
        s = self.settings
        prior_mean, prior_log_var, *maps = self.encoder([masked_image, mask], training=training)
        code_mean = prior_mean  # the code whose fill call() returns
        if self.posterior is not None:
            mean, log_var = self.posterior([image, mask], training=training)
        else:  # the first design: q is the prior network's Gaussian, the prior N(0, I)
            mean, log_var = prior_mean, prior_log_var
            prior_mean, prior_log_var = tf.zeros_like(mean), tf.zeros_like(log_var)
        posterior_seed, prior_seed = tf.unstack(self._noise_seeds(training))
        z = mean
        if training:
            z = mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal(tf.shape(mean), posterior_seed)
        prior_z = prior_mean + tf.exp(0.5 * prior_log_var) * tf.random.stateless_normal(tf.shape(mean), prior_seed)
        fill = self._decode(z, maps, training)
        prior_fill = self._decode(prior_z, maps, training)
        # The discriminator judges composites: known pixels are real, so it looks at the hole.
        known = masked_image * (1.0 - mask)
        composite = known + fill * mask
        prior_composite = known + prior_fill * mask

        real_logits, real_features = self.discriminator([image, mask], training=training)
        fake_logits, fake_features = self.discriminator([composite, mask], training=training)
        prior_logits, _ = self.discriminator([prior_composite, mask], training=training)
        fake_weights = self._fake_weights(mask, tf.shape(fake_logits))

        def fake_mean(values):  # a patch that shows no hole is real: it does not count as fake
            return tf.reduce_sum(values * fake_weights) / tf.maximum(tf.reduce_sum(fake_weights), 1.0)

        pixels = float(np.prod(image.shape[1:]))
        # KL between diagonal Gaussians, summed over the code, per pixel of the image.
        kl = tf.reduce_mean(tf.reduce_sum(0.5 * (
            prior_log_var - log_var + (tf.exp(log_var) + tf.square(mean - prior_mean)) / tf.exp(prior_log_var) - 1.0
        ), axis=-1)) / pixels
        feature = tf.reduce_mean(tf.square(fake_features - tf.stop_gradient(real_features)))
        weights = 1.0 + (s["hole_weight"] - 1.0) * mask
        pixel = tf.reduce_mean(weights * tf.abs(fill - image))
        mean_fill = tf.zeros_like(pixel)
        if s["mean_fill_weight"] or not training:
            mean_fill = tf.reduce_mean(weights * tf.abs(self._decode(code_mean, maps, training) - image))
        # softplus(-l) = -log sigmoid(l): cross-entropies from logits, stable for large |l|.
        adversarial = 0.5 * (fake_mean(tf.nn.softplus(-fake_logits)) + fake_mean(tf.nn.softplus(-prior_logits)))
        real_loss = tf.reduce_mean(s["real_label"] * tf.nn.softplus(-real_logits)
                                   + (1.0 - s["real_label"]) * tf.nn.softplus(real_logits))
        fake_loss = 0.5 * (fake_mean(tf.nn.softplus(fake_logits)) + fake_mean(tf.nn.softplus(prior_logits)))
        return {
            "loss": s["kl_weight"] * kl + s["feature_weight"] * feature + s["pixel_weight"] * pixel
            + s["mean_fill_weight"] * mean_fill + s["adversarial_weight"] * adversarial,
            "kl": kl,
            "feature": feature,
            "pixel": pixel,
            "mean_fill": mean_fill,
            "adversarial": adversarial,
            "discriminator": real_loss + fake_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": fake_mean(tf.sigmoid(fake_logits)),
        }

    def _fake_weights(self, mask, shape):
        """Which of the discriminator's logits judge a fill: all, except the patches that show no hole."""
        if self.settings["discriminator"] != "patch":
            return tf.ones(shape, mask.dtype)
        factor = 2 ** (self.settings["depth"] - 1)  # pixels per side of a patch logit's cell
        holes = tf.nn.avg_pool2d(mask, factor, factor, "VALID")
        return tf.reshape(tf.cast(holes > 0, mask.dtype), shape)
