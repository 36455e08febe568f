"""ganzoo: a plugin-based GAN zoo. See README.md; plugin authors start at ganzoo.hookspecs."""

# The name to `pip install` and to depend on: "ganzoo" on the package index is an unrelated project.
DISTRIBUTION = "pyganzoo"

from .config import ModelSpec, RunConfig
from .images import ImageData
from .errors import GanzooError
from .hookspecs import hookimpl
from .models import build_component
from .pretrained import load_pretrained
from .registry import PowersOfTwo

__all__ = ["DISTRIBUTION", "GanzooError", "ImageData", "ModelSpec", "PowersOfTwo", "RunConfig", "build_component",
           "hookimpl", "load_pretrained"]
__version__ = "0.1.0"
