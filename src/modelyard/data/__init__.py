"""Datasets: packaged raw sources -> canonical split files, and one DataModule each."""
