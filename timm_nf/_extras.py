"""Optional dependencies: parts of timm-nf that `import timm_nf` does not need install as pip extras."""
import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or fail with one line naming the extra that installs it.

    Args:
        module: Module to import (e.g. `sklearn.datasets`).
        extra: The timm-nf extra that provides it (`digits`, `plots`).
        purpose: What needs it, for the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: pip install 'timm-nf[{extra}]' "
            f'(or pip install {e.name or module})') from e
