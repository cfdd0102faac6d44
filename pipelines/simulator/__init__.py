"""The RecFlow-format simulator: ``python -m dftopk_cascade.pipelines.simulator.simulate``.

- ``simulated_world``: the latent user-interest x video model;
  ``simulated_history``: behaviour sequences; ``simulated_cascade``: the simulated cascade's stages.
- ``simulate``: writes a dataset in RecFlow's exact layout from them.
- ``simulated_tfrecords``: a small simulated dataset, converted, in one call (examples, tests).

Example:
    >>> from dftopk_cascade.pipelines.simulator.simulated_world import SimulatedWorld
    >>> SimulatedWorld.__name__
    'SimulatedWorld'
"""
