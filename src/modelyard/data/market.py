"""Country indicators -> market potential (log GDP): the prepared gapminder table
(`modelyard prepare market`), read as any table of features and a target is."""

from __future__ import annotations

from modelyard.data.table import TableDataModule


class MarketDataModule(TableDataModule):
    dataset_name = "market"
