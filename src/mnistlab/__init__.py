"""mnistlab: generate handwritten digits with density models and measure how good and how new they are."""

__version__ = "0.1.0"
