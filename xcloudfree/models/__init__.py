"""The networks: pure torch modules, no xarray.

:class:`HybridModel` bundles the STGAN generator, the CycleGAN refiner and its
inverse, and the cloud-mask head; :func:`load_model` reads a saved model and
:func:`pretrained` the one shipped in the package.
"""

from .blocks import CORE, PatchDiscriminator
from .cyclegan import Clouder, Refiner
from .hybrid import PRETRAINED, STAGES, HybridConfig, HybridModel, load_model, pretrained
from .mask import CloudMaskNet
from .stgan import STGANGenerator

__all__ = [
    "CORE",
    "PRETRAINED",
    "STAGES",
    "CloudMaskNet",
    "Clouder",
    "HybridConfig",
    "HybridModel",
    "PatchDiscriminator",
    "Refiner",
    "STGANGenerator",
    "load_model",
    "pretrained",
]
