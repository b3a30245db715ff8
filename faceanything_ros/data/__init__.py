"""Data-engine datasets as the package reads them (format, model-layout samples)."""
