"""The hooks a ganzoo plugin implements.

Every hook receives a `register` callback and calls it once per thing it adds;
plugins never touch ganzoo's registries directly. A plugin is any module or
object with functions marked `@hookimpl`:

    from ganzoo import hookimpl

    @hookimpl
    def register_losses(register):
        register("lsgan", LeastSquaresLoss, "Least-squares GAN loss (Mao et al. 2017)")

Built-in plugins (the `ganzoo_plugins` package, from the repository's plugins/
folder) use exactly these hooks; third-party packages expose their module under
the `ganzoo` entry-point group. docs/plugins.md has a runnable snippet for every
hook here (a test fails on a hook it lacks); `ganzoo check-plugin NAME` and
`ganzoo.testing.check_plugin` check a plugin against these contracts.
"""

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_generators(register):
    """Register generator networks.

    Call ``register(name, factory, description=None)``. ``factory(*, image_size,
    channels, z_dim, width)`` returns an ``nn.Module`` whose ``forward(z)`` maps a
    ``[B, z_dim]`` latent batch to ``[B, channels, image_size, image_size]`` images
    in [-1, 1]. The description defaults to the factory docstring's first line.

    Optional keyword ``image_sizes``: the sizes the network can be built at, as
    anything that answers ``size in image_sizes`` (a tuple, a ``range``, or
    ``ganzoo.PowersOfTwo(8)`` for 8, 16, 32, ...); left out, any size. ``ganzoo
    run`` refuses other sizes with a clear message, and the conformance kit
    (``ganzoo check-plugin``) tests the declared ones. ``channel_counts``: the
    channel counts it takes, e.g. ``(1,)``; left out, 1 and 3. ``conditional=True``:
    the network is conditioned on a class label; its factory also takes
    ``num_classes`` and its ``forward(z, y)`` the labels, int64 ``[B]`` (see
    docs/plugins.md, "Conditional models").

    Any other keyword is an option: a keyword parameter of the factory, passed to
    it (``register("deep", MLP, layers=3)``); a ModelSpec's ``options`` and the
    run's ``--options generator.layers=4`` override it. An unknown keyword is
    refused (see ganzoo.contracts). This holds for every hook's ``register``.
    """


@hookspec
def register_discriminators(register):
    """Register discriminator networks.

    Call ``register(name, factory, description=None)``. ``factory(*, image_size,
    channels, width)`` returns an ``nn.Module`` whose ``forward(x)`` maps
    ``[B, channels, image_size, image_size]`` images in [-1, 1] to ``[B]`` raw
    logits (no sigmoid: the losses work on logits). Optional keywords
    ``image_sizes``, ``channel_counts`` and ``conditional`` (then ``forward(x, y)``),
    and options, as for generators.
    """


@hookspec
def register_losses(register):
    """Register adversarial losses.

    Call ``register(name, factory, description=None)``. ``factory()`` returns an
    object with ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``,
    each returning a scalar tensor to minimise. Either may take a third (second)
    argument, ``context``: a ``ganzoo.recipe.StepContext`` that runs D on other
    inputs and takes input gradients. Optional: ``statistics(real_logits,
    fake_logits)`` returning ``{name: scalar tensor}`` (logged under those names;
    default ``d_real``/``d_fake``, D's mean probabilities), ``labels`` (``{name:
    progress-line label}``) and ``discriminator_won(record)``, saying from a log
    record whether D has won (default: ``loss_d < 0.05``, ``d_real > 0.95``,
    ``d_fake < 0.05``).
    """


@hookspec
def register_regularizers(register):
    """Register regularisers of the discriminator (gradient penalty, R1, ...).

    Call ``register(name, factory, description=None, weight=1.0, every=1)``; ``weight`` and ``every``
    are the defaults a run's ``--regularizers NAME[:WEIGHT][@EVERY]`` overrides. ``factory()`` returns
    a callable ``penalty(context)`` giving the unweighted scalar penalty, where ``context`` is a
    ``ganzoo.recipe.StepContext`` (``real``, ``fake``, ``discriminate(x)``, ``input_gradient(out, x)``).
    The loop adds ``weight * penalty`` to D's loss at every step (``every`` 1), or, lazily, runs it as
    its own D update every ``every`` steps weighted by ``every``, D's lr and betas rescaled by k/(k+1).
    """


@hookspec
def register_augmentations(register):
    """Register differentiable augmentations (DiffAugment-style transforms) for ``--augment``.

    Call ``register(name, transform, description=None)``. ``transform(x)`` maps images
    ``[B, C, H, W]`` to images of the same shape, differentiably, on x's device, drawing its random
    numbers from torch's global RNG. The loop applies the run's policy to everything D sees, real
    and fake alike, in every phase.
    """


@hookspec
def register_datasets(register):
    """Register datasets.

    Call ``register(name, factory, description=None, image_size=32, channels=1, splits=None,
    example_files=None, classes=None)``; the keywords are the dataset's default resolution and channel
    count, the splits it has (None: the factory checks), ``example_files(folder, split)``, which writes a
    few images in the dataset's format for the conformance kit to load, and how many classes its labels
    name (a conditional model's num_classes; None: counted from the labels once they load). ``factory(*, root, download, split, image_size, channels)``
    returns a ``ganzoo.ImageData``: all images as one uint8 tensor ``[N, C, H, W]`` (any size;
    ganzoo crops the centre, resizes and converts), or, for images still in their files (a
    folder of JPEGs, an lmdb), a ``ganzoo.data.EncodedImages`` that ganzoo decodes once into its
    memory-mapped image cache; and optional int64 labels (-1: none). ``root`` is the user's
    ``--data-dir`` (or None), ``download`` whether fetching from the internet is allowed,
    ``split`` the user's ``--split`` ("train" by default; "test" for evaluation references);
    ``image_size``/``channels`` are the resolution the run asks for, a hint the factory may use to
    decode smaller.
    """


@hookspec
def register_models(register):
    """Register trainable models: a generator, a discriminator and a loss composed by name.

    Call ``register(name, ModelSpec(...), description=None)``; see
    ``ganzoo.config.ModelSpec`` for the defaults (learning rate, widths, ...) and
    the component options (``options={"loss": {"a": -1.0}}``) a model may set.
    A factory may build a registered component by name with
    ``ganzoo.build_component(kind, name, **arguments)``; never from a hook itself.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics.

    Call ``register(name, metric, description=None, datasets=None, n=10000, better=None, version="1",
    default=True)``.
    ``metric(samples)`` takes a ``ganzoo.evaluate.Samples`` (uint8 images ``[N, C, H, W]``
    and the dataset they are compared with) and returns a dict of named numbers, e.g.
    ``{"fid": 12.3}``. It may define ``check(options)``, raising ``GanzooError`` when it
    cannot run (weights missing), so a command fails before drawing any sample.
    ``datasets`` names the datasets it scores by default (None: any colour dataset no
    metric names), ``n`` the sample count it wants by default, ``better`` maps each
    returned name to "lower" or "higher". ``version`` goes into every score's protocol (see
    ``ganzoo.protocol``): bump it whenever a change moves the numbers, so old and new scores
    are never ranked in one column. ``default=False`` keeps a metric out of the dataset's
    defaults (one that is slow or a diagnostic: it runs when named with --metrics).
    A metric notes its settings in the protocol with ``samples.note(k=5)``;
    ``samples.features(space)`` and ``samples.reference(space)`` (a ``ganzoo.evaluate.FeatureSpace``)
    note the feature network, its weights, the resize and the real images themselves.
    """


@hookspec
def register_labellers(register):
    """Register labellers: what says which class a generated image shows, for the analyses that pick
    samples by class (``ganzoo arithmetic 'class:7 - ...'``, ``ganzoo dropout --class 7``, ``--labeller NAME``).

    Call ``register(name, builder, description=None)``. ``builder(context)`` receives a
    ``ganzoo.analysis.labellers.LabellerContext`` (the loaded networks, the labelled dataset's name and
    folder, ``per_class``, ``seed``, ``download``, ``console``) and returns the labeller: a callable from
    float images ``[N, C, H, W]`` in [-1, 1] to class ids ``[N]`` (int) or scores ``[N, classes]`` (float,
    column c scoring class c; exemplars are then picked by confidence).
    """
