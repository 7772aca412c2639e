"""mender-bridge: admit Cloud IoT registry devices to Mender with the same identity and key."""

import warnings

__version__ = "0.1.0"

# google-api-core warns, on import, about its Python support schedule: an unstructured stderr
# line per process that no operator can act on. One filter here serves every entry point.
warnings.filterwarnings("ignore", message="You are using a Python version",
                        category=FutureWarning)
