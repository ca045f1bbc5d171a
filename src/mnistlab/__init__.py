"""mnistlab: generate handwritten digits with density models; measure how good and how new."""

__version__ = "0.1.0"
