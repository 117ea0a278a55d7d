"""What the bot sells: the models, their inputs and their prices, from catalog/models/*.yaml.

Pure data and arithmetic: no Telegram, no database, no KIE wire format, so the wizard, the KIE
client and the ledger can all read the same catalog.
"""

from catalog.actions import Action
from catalog.families import FAMILIES, Family, Text
from catalog.loader import CatalogError, load, shipped
from catalog.model import Catalog, Field, Model, Option, Sku
from catalog.pricing import Pricing, user_price_kopecks

__all__ = ["FAMILIES", "Action", "Catalog", "CatalogError", "Family", "Field", "Model", "Option", "Pricing", "Sku",
           "Text", "load", "shipped", "user_price_kopecks"]
