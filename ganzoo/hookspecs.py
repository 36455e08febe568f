"""The hooks a ganzoo plugin implements: one `register_<kinds>` hook per row of the plugin kinds table
(ganzoo.kinds), generated from it, each documented there (``help(ganzoo.hookspecs.register_losses)``).

Every hook receives a `register` callback and calls it once per thing it adds;
plugins never touch ganzoo's registries directly. A plugin is any module or
object with functions marked `@hookimpl`:

    from ganzoo.api import hookimpl

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

from .kinds import KINDS, Kind

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


def _specification(kind: Kind):
    def register_hook(register):
        pass
    register_hook.__name__ = register_hook.__qualname__ = kind.hook
    register_hook.__doc__ = kind.doc
    return hookspec(register_hook)


for _kind in KINDS:
    globals()[_kind.hook] = _specification(_kind)
del _kind
