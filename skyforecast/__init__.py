"""skyforecast: one outdoor photo in, a predicted sky time-lapse out (MD-GAN, Xiong et al., CVPR 2018).

Importing the package is cheap; torch is loaded by the submodules that need it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
