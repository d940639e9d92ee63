"""The VAE-GAN inpainter (Larsen et al., 2016), conditioned on the visible face.

Three networks:

- the **encoder** maps the masked image and its mask to the mean and
  log-variance of a Gaussian over a latent code z, q(z | visible face);
- the **decoder** maps z to a full image. With ``image_skips`` (the default) it
  also receives the encoder's feature maps at every resolution, as a U-Net
  decoder does, so z only has to carry what the hole needs; without them it
  rebuilds the whole face from z alone, as in Larsen et al.;
- the **discriminator** tells real faces from composited fills and returns its
  logit and an intermediate feature map.

The losses, each logged on its own:

- ``kl``: KL(q(z | x) || N(0, I)) per pixel, the VAE's prior term;
- ``feature``: squared error between the discriminator's features of the real
  face and of the fill, the learned similarity that replaces pixel error in
  Larsen et al.: it measures how a fill *looks*, so it tolerates a hair strand
  a pixel off where a pixel loss would ask for a blur;
- ``pixel``: L1 error of the whole output, the hole weighted ``hole_weight`` times
  more than the known pixels, which keeps the fill anchored to the face;
- ``adversarial``: the non-saturating GAN loss -log D(fill) on fills from q(z | x)
  and from the prior (Goodfellow et al., 2014): it still has gradient when the
  discriminator wins, where the minimax log(1 - D) does not;
- ``discriminator``: cross-entropy with one-sided label smoothing (real faces
  labelled ``real_label`` = 0.9), which keeps the discriminator from growing
  overconfident and its gradients from vanishing.

One Keras model with its own ``train_step`` and ``test_step``: ``fit``, the
progress bar, the checkpoints and the NaN guard of :mod:`inpaintlib.training`
work as they do for the U-Net. Encoder, decoder and discriminator each have
their own Adam optimizer (beta_1 = 0.5, the usual choice for GANs since DCGAN).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from inpaintlib.errors import ConfigError

#: Seed of the prior codes that evaluation (``test_step``) decodes.
EVAL_NOISE_SEED = 2016


def build_vaegan(
    image_size: int = 64,
    latent_dim: int = 128,
    base_filters: int = 32,
    depth: int = 4,
    image_skips: bool = True,
    kl_weight: float = 1.0,
    feature_weight: float = 1.0,
    pixel_weight: float = 1.0,
    hole_weight: float = 6.0,
    adversarial_weight: float = 0.3,
    real_label: float = 0.9,
    weight_average: float = 0.99,
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
        Strided convolutions in the encoder and discriminator (64 -> 4 pixels at depth 4).
    image_skips : bool
        Give the decoder the encoder's feature maps (True) or z alone (False).
    kl_weight, feature_weight, pixel_weight, adversarial_weight : float
        Weights of the encoder-decoder's losses (see the module docstring).
    hole_weight : float
        How much more a hole pixel counts than a known one in the pixel loss.
    real_label : float
        Target of real faces in the discriminator's loss (1.0: no label smoothing).
    weight_average : float
        Momentum of the moving average of the encoder's and decoder's weights
        that the trained model fills with (0: the last step's weights).

    Returns
    -------
    VAEGAN

    Examples
    --------
    >>> model = build_vaegan(image_size=32, latent_dim=8, base_filters=8, depth=3)
    >>> [net.name for net in (model.encoder, model.decoder, model.discriminator)]
    ['encoder', 'decoder', 'discriminator']
    """
    return VAEGAN(
        image_size=image_size, latent_dim=latent_dim, base_filters=base_filters, depth=depth,
        image_skips=image_skips, kl_weight=kl_weight, feature_weight=feature_weight,
        pixel_weight=pixel_weight, hole_weight=hole_weight, adversarial_weight=adversarial_weight,
        real_label=real_label, weight_average=weight_average,
    )


def build_encoder(image_size: int, latent_dim: int, base_filters: int, depth: int) -> keras.Model:
    """(masked image, mask) -> (z mean, z log-variance, feature maps from full size down to the bottom)."""
    masked_image = keras.Input((image_size, image_size, 3), name="masked_image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    x = layers.Concatenate(name="image_and_mask")([masked_image, mask])
    maps = [x]
    for level in range(depth):
        x = layers.Conv2D(base_filters * 2**level, 4, strides=2, padding="same", name=f"down{level}")(x)
        x = layers.LeakyReLU(0.2, name=f"down{level}_act")(x)
        maps.append(x)
    x = layers.Flatten(name="flatten")(x)
    mean = layers.Dense(latent_dim, name="z_mean")(x)
    log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model([masked_image, mask], [mean, log_var, *maps], name="encoder")


def build_decoder(image_size: int, latent_dim: int, base_filters: int, depth: int, image_skips: bool) -> keras.Model:
    """z (and, with ``image_skips``, the encoder's maps) -> image in [0, 1], not yet composited."""
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
    image = layers.Conv2D(3, 1, activation="sigmoid", name="image")(x)
    # Skips arrive bottom first; the encoder returns them full size first.
    return keras.Model(inputs, image, name="decoder")


def build_discriminator(image_size: int, base_filters: int, depth: int) -> keras.Model:
    """image -> (logit that it is real, the feature map of its second-to-last block)."""
    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for level in range(depth):
        x = layers.Conv2D(base_filters * 2**level, 4, strides=2, padding="same", name=f"down{level}")(x)
        x = layers.LeakyReLU(0.2, name=f"down{level}_act")(x)
        if level == depth - 2:
            features = x  # Larsen et al. compare images in a middle layer: shapes, not pixels
    logit = layers.Dense(1, name="logit")(layers.Flatten(name="flatten")(x))
    return keras.Model(image, [logit, features], name="discriminator")


@keras.saving.register_keras_serializable(package="inpaintlib")
class VAEGAN(keras.Model):
    """Encoder, decoder and discriminator, trained together by :meth:`.train_step`.

    Called on ``(masked_image, mask)`` it returns the decoder's image for the
    posterior mean of z: the single most likely fill. :meth:`.sample_fills`
    draws several.
    """

    LOSSES = ("loss", "kl", "feature", "pixel", "adversarial", "discriminator", "d_real", "d_fake")

    def __init__(self, image_size=64, latent_dim=128, base_filters=32, depth=4, image_skips=True, kl_weight=1.0,
                 feature_weight=1.0, pixel_weight=1.0, hole_weight=6.0, adversarial_weight=0.3, real_label=0.9,
                 weight_average=0.99, **kwargs):
        super().__init__(**kwargs)
        if depth < 2 or base_filters < 1 or latent_dim < 1:
            raise ConfigError(f"depth must be at least 2, base_filters and latent_dim at least 1, not "
                              f"{depth}, {base_filters} and {latent_dim}")
        if image_size % 2**depth:
            raise ConfigError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}: lower the depth")
        if not 0.5 < real_label <= 1.0:
            raise ConfigError(f"real_label must be in (0.5, 1], not {real_label}")
        if not 0.0 <= weight_average < 1.0:
            raise ConfigError(f"weight_average must be in [0, 1), not {weight_average}")
        self.settings = dict(
            image_size=image_size, latent_dim=latent_dim, base_filters=base_filters, depth=depth,
            image_skips=image_skips, kl_weight=kl_weight, feature_weight=feature_weight,
            pixel_weight=pixel_weight, hole_weight=hole_weight, adversarial_weight=adversarial_weight,
            real_label=real_label, weight_average=weight_average,
        )
        self.encoder = build_encoder(image_size, latent_dim, base_filters, depth)
        self.decoder = build_decoder(image_size, latent_dim, base_filters, depth, image_skips)
        self.discriminator = build_discriminator(image_size, base_filters, depth)
        # A moving average of the encoder's and decoder's weights: the adversarial game makes the
        # weights oscillate from step to step, and their recent average fills better than wherever
        # the last step happened to land. train() puts it in place when training ends.
        self.averages = [keras.Variable(v, trainable=False, name=f"average_{i}", aggregation="only_first_replica")
                         for i, v in enumerate(self._generator_variables())]
        # The training noise of step t is drawn statelessly from (noise_seed, t): a function of the step
        # count, which checkpoints save with the optimizers, so a resumed run draws what the
        # uninterrupted run drew. (A SeedGenerator's state is not saved with the weights.)
        self.noise_seed = keras.Variable(np.random.randint(2**31 - 1), dtype="int64", trainable=False,
                                         name="noise_seed", aggregation="only_first_replica")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOSSES}
        self.built = True

    def get_config(self):
        return {**super().get_config(), **self.settings}

    # -- compiling: one Adam per network -------------------------------------------------------

    def compile(self, learning_rate: float = 2e-4, beta_1: float = 0.5, jit_compile="auto"):
        """Create the encoder's, decoder's and discriminator's optimizers (Adam)."""
        super().compile(optimizer=None, jit_compile=jit_compile)
        self.optimizers = {}
        for net in (self.encoder, self.decoder, self.discriminator):
            optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, name=f"{net.name}_adam")
            optimizer.build(net.trainable_variables)  # now, so a checkpoint can restore its state
            self.optimizers[net.name] = optimizer
        self.compiled_with = {"learning_rate": learning_rate, "beta_1": beta_1, "jit_compile": jit_compile}

    def average_weights(self):
        """Put the moving averages in place of the encoder's and decoder's weights (once, after training)."""
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

    def sample_fills(self, masked_images, masks, k: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """Decode ``k`` codes drawn from q(z | visible face) for each image: (k, N, S, S, 3), not composited."""
        masked_images = np.asarray(masked_images, np.float32)
        masks = np.asarray(masks, np.float32)
        rng = np.random.default_rng(seed)
        fills = np.empty((k, *masked_images.shape), np.float32)
        for start in range(0, len(masked_images), batch_size):
            batch = slice(start, start + batch_size)
            mean, log_var, *maps = self.encoder([masked_images[batch], masks[batch]], training=False)
            mean, std = mean.numpy(), np.exp(0.5 * log_var.numpy())
            for i in range(k):
                z = tf.constant(mean + std * rng.standard_normal(mean.shape, dtype=np.float32))
                fills[i, batch] = self._decode(z, maps, False).numpy()
        return fills

    # -- training --------------------------------------------------------------------------------

    def train_step(self, data):
        """One step of the three networks on a batch ``((masked_image, mask), image)``: each
        network's Adam on its own loss, then the weight average; the losses, for ``fit``'s logs."""
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
        n_encoder = len(self.encoder.trainable_variables)
        self.optimizers["encoder"].apply_gradients(zip(generator_gradients[:n_encoder], self.encoder.trainable_variables))
        self.optimizers["decoder"].apply_gradients(zip(generator_gradients[n_encoder:], self.decoder.trainable_variables))
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
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    def _track(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _decode(self, z, maps, training):
        skips = maps[::-1] if self.settings["image_skips"] else []
        return self.decoder([z, *skips], training=training)

    def _loss_terms(self, masked_image, mask, image, training: bool) -> dict:
        """Every loss of one batch. In training z is sampled; in evaluation it is the posterior mean."""
        s = self.settings
        mean, log_var, *maps = self.encoder([masked_image, mask], training=training)
        posterior_seed, prior_seed = tf.unstack(self._noise_seeds(training))
        z = mean
        if training:
            z = mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal(tf.shape(mean), posterior_seed)
        prior_z = tf.random.stateless_normal(tf.shape(mean), prior_seed)
        fill = self._decode(z, maps, training)
        prior_fill = self._decode(prior_z, maps, training)
        # The discriminator judges composites: known pixels are real, so it looks at the hole.
        known = masked_image * (1.0 - mask)
        composite = known + fill * mask
        prior_composite = known + prior_fill * mask

        real_logit, real_features = self.discriminator(image, training=training)
        fake_logit, fake_features = self.discriminator(composite, training=training)
        prior_logit, _ = self.discriminator(prior_composite, training=training)

        pixels = float(np.prod(image.shape[1:]))
        kl = tf.reduce_mean(tf.reduce_sum(0.5 * (tf.exp(log_var) + tf.square(mean) - 1.0 - log_var), axis=-1)) / pixels
        feature = tf.reduce_mean(tf.square(fake_features - tf.stop_gradient(real_features)))
        weights = 1.0 + (s["hole_weight"] - 1.0) * mask
        pixel = tf.reduce_mean(weights * tf.abs(fill - image))
        # softplus(-l) = -log sigmoid(l): cross-entropies from logits, stable for large |l|.
        adversarial = 0.5 * tf.reduce_mean(tf.nn.softplus(-fake_logit) + tf.nn.softplus(-prior_logit))
        real_loss = s["real_label"] * tf.nn.softplus(-real_logit) + (1.0 - s["real_label"]) * tf.nn.softplus(real_logit)
        fake_loss = 0.5 * (tf.nn.softplus(fake_logit) + tf.nn.softplus(prior_logit))
        return {
            "loss": s["kl_weight"] * kl + s["feature_weight"] * feature + s["pixel_weight"] * pixel
            + s["adversarial_weight"] * adversarial,
            "kl": kl,
            "feature": feature,
            "pixel": pixel,
            "adversarial": adversarial,
            "discriminator": tf.reduce_mean(real_loss + fake_loss),
            "d_real": tf.reduce_mean(tf.sigmoid(real_logit)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logit)),
        }
