"""cprop: backpropagation at C speed from Python.

Multilayer perceptrons whose forward pass, gradients and whole training epochs run in typed
Cython kernels without the GIL, every number checked against :mod:`cprop.oracle`, a plain-Python
implementation of the same definitions.
"""

from cprop._version import __version__
from cprop.mlp import MLP, History, validation_split
from cprop.io import load
from cprop.population import Population, PopulationHistory
from cprop._config import show_config
from cprop import activations, examples, optimizers, oracle, schedules

__all__ = ["MLP", "History", "Population", "PopulationHistory", "load", "validation_split",
           "activations", "examples", "optimizers", "oracle", "schedules", "show_config",
           "__version__"]
