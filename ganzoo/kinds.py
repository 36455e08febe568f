"""The plugin kinds: one table, from which ganzoo derives everything a kind needs.

Each row names a kind of thing plugins register (a generator, a loss, a logger, ...) and says, once:
its hook (`register_<plural>`, documented by the row's text: ganzoo.hookspecs generates the hook
specifications from it), its registry (`registries().<plural>`: ganzoo.plugins builds one per row, in
this order), its contract (what ganzoo calls a registered factory with, and which keywords `register()`
takes as declarations: ganzoo.contracts checks them) and whether the conformance kit checks its entries
(ganzoo.testing). Adding a kind of plugin is adding a row here (and, where it is checked, its checks).
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class Contract:
    """How ganzoo calls one kind's factory (and the methods of what it builds)."""

    text: str                                   # the contract as the docs write it
    declarations: tuple[str, ...] = ()          # keywords of register() that describe the entry
    arguments: tuple[str, ...] = ()             # keywords ganzoo passes the factory
    positional: int = 0                         # positional arguments ganzoo passes the factory
    methods: tuple[tuple[str, tuple[int, ...], str], ...] = ()   # (method, positional counts it may take, text)
    callable: bool = True                       # False: the registered thing is a value (a ModelSpec)
    conditional: tuple[str, ...] = ()           # what a factory registered with conditional=True is passed besides
    conditional_methods: tuple[tuple[str, tuple[int, ...], str], ...] = ()   # ... and the methods it then has


NETWORK_DECLARATIONS = ("image_sizes", "channel_counts", "conditional")


@dataclass(frozen=True)
class Kind:
    """One kind of plugin component: its name, its registry's and hook's name, its contract, its hook's text."""

    name: str                 # "generator": how messages and `register()` declarations call one
    plural: str               # "generators": the registry (registries().generators) and the hook's suffix
    contract: Contract
    checked: bool             # the conformance kit (`ganzoo check-plugin`) checks every entry of this kind
    doc: str                  # the hook's documentation (the hook specification's docstring)

    @property
    def hook(self) -> str:
        return f"register_{self.plural}"


KINDS: tuple[Kind, ...] = (
    Kind("model", "models", Contract("a ganzoo.ModelSpec(generator=..., discriminator=..., loss=..., defaults=..., options=...)",
                      callable=False),
         checked=True, doc="""Register trainable models: a generator, a discriminator and a loss composed by name.

    Call ``register(name, ModelSpec(...), description=None)``; see
    ``ganzoo.config.ModelSpec`` for the defaults (learning rate, widths, ...) and
    the component options (``options={"loss": {"a": -1.0}}``) a model may set.
    A factory may build a registered component by name with
    ``ganzoo.build_component(kind, name, **arguments)``; never from a hook itself.
    """),
    Kind("generator", "generators", Contract("factory(*, image_size, channels, z_dim, width) -> nn.Module with forward(z)",
                          NETWORK_DECLARATIONS, ("image_size", "channels", "z_dim", "width"),
                          methods=(("forward", (1,), "forward(z) takes one [B, z_dim] latent batch"),),
                          conditional=("num_classes",),
                          conditional_methods=(("forward", (2,), "forward(z, y) takes a [B, z_dim] latent batch and "
                                                                 "[B] int64 class labels"),)),
         checked=True, doc="""Register generator networks.

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
    """),
    Kind("discriminator", "discriminators", Contract("factory(*, image_size, channels, width) -> nn.Module with forward(x)",
                              (*NETWORK_DECLARATIONS, "class_head"), ("image_size", "channels", "width"),
                              methods=(("forward", (1,), "forward(x) takes one [B, C, S, S] image batch"),),
                              conditional=("num_classes",),
                              conditional_methods=(("forward", (2,), "forward(x, y) takes a [B, C, S, S] image batch "
                                                                     "and [B] int64 class labels"),)),
         checked=True, doc="""Register discriminator networks.

    Call ``register(name, factory, description=None)``. ``factory(*, image_size,
    channels, width)`` returns an ``nn.Module`` whose ``forward(x)`` maps
    ``[B, channels, image_size, image_size]`` images in [-1, 1] to ``[B]`` raw
    logits (no sigmoid: the losses work on logits), or ``(logits, extras)``: the
    ``[B]`` logits and a dict of named tensors, each ``[B, ...]``, that the step
    hands losses and regularisers beside them (``context.d_real.extras``); the
    trainer refuses any other shape in one sentence. Optional keywords
    ``image_sizes``, ``channel_counts`` and ``conditional`` (then ``forward(x, y)``),
    and options, as for generators. ``class_head=True``: an auxiliary classifier
    (ACGAN): the factory also takes ``num_classes``, ``forward(x)`` sees the image
    alone and returns ``(logits, {"class_logits": [B, num_classes]})``; it pairs
    with a conditional generator.
    """),
    Kind("loss", "losses", Contract("factory() -> an object with d_loss(real_logits, fake_logits) and g_loss(fake_logits)",
                     methods=(("d_loss", (2, 3), "d_loss(real_logits, fake_logits[, context])"),
                              ("g_loss", (1, 2), "g_loss(fake_logits[, context])"))),
         checked=True, doc="""Register adversarial losses.

    Call ``register(name, factory, description=None)``. ``factory()`` returns an
    object with ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``,
    each returning a scalar tensor to minimise. Either may take a third (second)
    argument, ``context``: a ``ganzoo.api.StepContext`` that runs D on other
    inputs and takes input gradients. Optional: ``statistics(real_logits,
    fake_logits)`` returning ``{name: scalar tensor}`` (logged under those names;
    default ``d_real``/``d_fake``, D's mean probabilities), ``labels`` (``{name:
    progress-line label}``) and ``discriminator_won(record)``, saying from a log
    record whether D has won (default: ``loss_d < 0.05``, ``d_real > 0.95``,
    ``d_fake < 0.05``).
    """),
    Kind("dataset", "datasets", Contract("factory(*, root, download, split, image_size, channels) -> ganzoo.api.ImageData",
                        ("image_size", "channels", "splits", "example_files", "classes", "file_root", "metrics"),
                        ("root", "download", "split", "image_size", "channels")),
         checked=True, doc="""Register datasets.

    Call ``register(name, factory, description=None, image_size=32, channels=1, splits=None,
    example_files=None, classes=None, file_root=False, metrics=None)``; the keywords are the dataset's default resolution and channel
    count, the splits it has (None: the factory checks), ``example_files(folder, split)``, which writes a
    few images in the dataset's format for the conformance kit to load, and how many classes its labels
    name (a conditional model's num_classes; None: counted from the labels once they load). ``file_root=True``:
    its ``root`` (the user's ``--data-dir``) is one file, e.g. an ``.npz``, not a folder; ``ganzoo run``,
    ``eval`` and ``--resume`` then accept a file there and refuse a folder. ``metrics``: the registered
    metrics it is scored with when a command names none (default: the metrics that name the dataset in their
    ``datasets=``, else, for colour images, Inception's). ``factory(*, root, download, split, image_size, channels)``
    returns a ``ganzoo.api.ImageData``: all images as one uint8 tensor ``[N, C, H, W]`` (any size;
    ganzoo crops the centre, resizes and converts), or, for images still in their files (a
    folder of JPEGs, an lmdb), a ``ganzoo.api.EncodedImages`` that ganzoo decodes once into its
    memory-mapped image cache; and optional int64 labels (-1: none). ``root`` is the user's
    ``--data-dir`` (or None), ``download`` whether fetching from the internet is allowed,
    ``split`` the user's ``--split`` ("train" by default; "test" for evaluation references);
    ``image_size``/``channels`` are the resolution the run asks for, a hint the factory may use to
    decode smaller.
    """),
    Kind("metric", "metrics", Contract("metric(samples) -> dict of named numbers",
                                       ("datasets", "n", "better", "version", "default", "conditional"), positional=1),
         checked=True, doc="""Register evaluation metrics.

    Call ``register(name, metric, description=None, datasets=None, n=10000, better=None, version="1",
    default=True, conditional=False)``.
    ``metric(samples)`` takes a ``ganzoo.api.Samples`` (uint8 images ``[N, C, H, W]``
    and the dataset they are compared with) and returns a dict of named numbers, e.g.
    ``{"fid": 12.3}``. It may define ``check(options)``, raising ``GanzooError`` when it
    cannot run (weights missing), so a command fails before drawing any sample.
    ``datasets`` names the datasets it scores by default (None: any colour dataset no
    metric names), ``n`` the sample count it wants by default, ``better`` maps each
    returned name to "lower" or "higher". ``version`` goes into every score's protocol (see
    ``ganzoo.protocol``): bump it whenever a change moves the numbers, so old and new scores
    are never ranked in one column. ``default=False`` keeps a metric out of the dataset's
    defaults (one that is slow or a diagnostic: it runs when named with --metrics). ``conditional=True``:
    it scores only class-conditional generators (their samples' requested classes), so an unconditional
    one is never scored with it.
    A metric notes its settings in the protocol with ``samples.note(k=5)``. The evaluators'
    features are shared: ``ganzoo.api.feature_space(name, samples)`` gives a registered
    ``ganzoo.api.FeatureSpace`` (``"mnist_evaluator"``, ``"inception"``), and
    ``samples.features(space)`` / ``samples.reference(space)`` its features of the samples and of
    the real images, computed once per evaluation whichever metric asks first, each noting the
    network, its weights' sha256, the resize and the real images in the protocol.
    """),
    Kind("feature space", "feature_spaces", Contract("factory(samples) -> ganzoo.api.FeatureSpace", positional=1),
         checked=False, doc="""Register feature spaces: a feature network that metrics compare images in (the MNIST
    evaluator's 128-d features, the FID Inception's 2048-d pool features), shared by every metric.

    Call ``register(name, factory, description=None)``. ``factory(samples)`` gets the ``ganzoo.api.Samples``
    being scored (its ``device`` and ``options``, e.g. ``--inception-weights``, ``--resize``) and returns a
    ``ganzoo.api.FeatureSpace(name, weights_sha256, resize, input_range, extract, batch_size=500)``:
    ``extract`` maps uint8 images ``[B, C, H, W]`` to features ``[B, D]``; the other fields are what the
    protocol of every score made in the space records. Raise ``GanzooError`` when it cannot be built
    (weights missing). A metric asks for one with ``ganzoo.api.feature_space(name, samples)``, then
    ``samples.features(space)`` (the samples' features, computed once per evaluation whichever metric asks
    first) and ``samples.reference(space)`` (the real images' features and Gaussian statistics, cached on
    disk). Built in: ``mnist_evaluator`` and ``inception``.
    """),
    Kind("labeller", "labellers", Contract("builder(context) -> a labeller", positional=1),
         checked=True, doc="""Register labellers: what says which class a generated image shows, for the analyses that pick
    samples by class (``ganzoo arithmetic 'class:7 - ...'``, ``ganzoo dropout --class 7``, ``--labeller NAME``).

    Call ``register(name, builder, description=None)``. ``builder(context)`` receives a
    ``ganzoo.analysis.labellers.LabellerContext`` (the loaded networks, the labelled dataset's name and
    folder, ``per_class``, ``seed``, ``download``, ``console``) and returns the labeller: a callable from
    float images ``[N, C, H, W]`` in [-1, 1] to class ids ``[N]`` (int) or scores ``[N, classes]`` (float,
    column c scoring class c; exemplars are then picked by confidence).
    """),
    Kind("regularizer", "regularizers", Contract("factory() -> penalty(context), a scalar tensor", ("weight", "every")),
         checked=True, doc="""Register regularisers of the discriminator (gradient penalty, R1, ...).

    Call ``register(name, factory, description=None, weight=1.0, every=1)``; ``weight`` and ``every``
    are the defaults a run's ``--regularizers NAME[:WEIGHT][@EVERY]`` overrides. ``factory()`` returns
    a callable ``penalty(context)`` giving the unweighted scalar penalty, where ``context`` is a
    ``ganzoo.api.StepContext`` (``real``, ``fake``, ``discriminate(x)``, ``input_gradient(out, x)``).
    The loop adds ``weight * penalty`` to D's loss at every step (``every`` 1), or, lazily, runs it as
    its own D update every ``every`` steps weighted by ``every``, D's lr and betas rescaled by k/(k+1).
    """),
    Kind("augmentation", "augmentations", Contract("transform(x) -> x augmented, same shape", positional=1),
         checked=True, doc="""Register differentiable augmentations (DiffAugment-style transforms) for ``--augment``.

    Call ``register(name, transform, description=None)``. ``transform(x)`` maps images
    ``[B, C, H, W]`` to images of the same shape, differentiably, on x's device, drawing its random
    numbers from torch's global RNG. The loop applies the run's policy to everything D sees, real
    and fake alike, in every phase.
    """),
    Kind("optimizer", "optimizers", Contract("factory(params, *, lr, betas) -> a torch.optim.Optimizer",
                                             arguments=("lr", "betas"), positional=1),
         checked=False, doc="""Register optimisers, which ``--optimizer-g`` and ``--optimizer-d`` name (adam, rmsprop, sgd built in).

    Call ``register(name, factory, description=None)``. ``factory(params, *, lr, betas)`` gets one
    network's parameters, its learning rate and its ``(beta1, beta2)`` pair (``--beta1``/``--beta2``,
    ``--betas-g``/``--betas-d``: Adam's betas, RMSprop's alpha is beta2, SGD's momentum beta1) and returns
    a ``torch.optim.Optimizer``. The step owns it: it sets each group's ``lr`` before every step (the
    schedule's factor times the network's rate), scales and unscales gradients, and checkpoints its
    ``state_dict()``. Any other keyword of ``register()`` is an option of the factory.
    """),
    Kind("schedule", "schedules", Contract("factory(*, total_steps) -> factor(step), a float",
                                           ("needs_total_steps",), ("total_steps",)),
         checked=False, doc="""Register learning-rate schedules, which ``--lr-schedule`` names (constant, linear, cosine built in).

    Call ``register(name, factory, description=None, needs_total_steps=False)``. ``factory(*,
    total_steps)`` gets the run's length in steps (``--epochs`` times the steps of an epoch; None for a
    ``--budget`` run, which has no end in steps) and returns ``factor(step)``: the multiplier of both
    networks' learning rates at step ``step`` (0, 1, ...), read before every step. With
    ``needs_total_steps=True`` a ``--budget`` run without ``--epochs`` is refused in one sentence rather
    than silently run at a constant rate. Any other keyword of ``register()`` is an option of the factory
    (``register("cosine-10", CosineSchedule, warmup=0.1)``).
    """),
    Kind("step hook", "step_hooks", Contract("factory() -> hook(phase, network)"),
         checked=False, doc="""Register step hooks: what runs after each optimiser step, which ``--step-hooks`` names (WGAN's clipping).

    Call ``register(name, factory, description=None)``. ``factory()`` returns ``hook(phase, network)``,
    called right after every optimiser step of the run with the phase (``"Dmain"``, ``"Dreg"`` or
    ``"Gmain"``) and the ``nn.Module`` that step updated (D in the D phases, G in Gmain), before the
    averaged G is updated. It may change the weights in place under ``torch.no_grad()`` (clip them,
    project them) and returns nothing. Any other keyword of ``register()`` is an option of the factory
    (``register("clip", WeightClip, clip=0.01)``).
    """),
    Kind("logger", "loggers", Contract("factory(*, config, files) -> an observer of the run's records",
                                       arguments=("config", "files")),
         checked=False, doc="""Register loggers: where a run sends its records besides metrics.jsonl (TensorBoard, MLflow, ...).

    Call ``register(name, factory, description=None)``; a run uses it when named in
    ``--loggers NAME[,NAME]`` (``--tensorboard`` names ``tensorboard``). ``factory(*, config, files)``
    gets the run's ``RunConfig`` and ``RunFiles`` (its folder) and returns an observer: an object with
    any of ``start(run)``, ``window(record)``, ``scores(record)``, ``grid(record)``,
    ``milestone(record)`` and ``finish()`` (see ``ganzoo.api``: ``RunInfo``, ``WindowRecord``,
    ``ScoreRecord``, ``GridRecord``, ``Milestone``). The factory only builds it (it runs on every
    process of a distributed run, and before any data loads, to fail early); ``start`` opens what it
    writes to, on the writing process alone. Raise ``GanzooError`` from the factory when something it
    needs is missing (a package, a setting): the run stops before loading data, with that sentence.
    """),
    Kind("pretrained generator", "pretrained", Contract("a generator weights file (or None, with a url in its card) and card=a model "
                                                       "card (see ganzoo.cards)", ("card",), callable=False),
         checked=False, doc="""Register pretrained generators: trained weights a user samples by name (``ganzoo sample dcgan-mnist``,
    ``ganzoo.load_pretrained("dcgan-mnist")``), each with its model card.

    Call ``register(name, weights, card=..., description=None)``. ``weights`` is the path of a generator file
    written by ganzoo (``<run>/<model>.safetensors``, whose config rebuilds the network; it may be stored in
    half precision), shipped inside your package; or None, when the card names a ``url`` to download it from
    (ganzoo fetches it once into its cache and refuses a file whose sha256 differs from the card's). ``card`` is
    a dict, or the path of a JSON file holding one, with the fields ``ganzoo.cards`` lists: how it was trained
    (command, commit, date, protocol), its scores with their interval and the real-data floor, and the sha256
    of the weights, checked on every load. ``benchmarks/ship_pretrained.py`` writes both from a run.
    """),
)

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
BY_HOOK: dict[str, Kind] = {kind.hook: kind for kind in KINDS}
