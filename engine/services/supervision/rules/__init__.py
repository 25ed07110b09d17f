"""The warning rules, one module per family. Importing this package registers every rule in
:data:`..registry.RULES` in the order of the catalogue (the order people see)."""

from . import assets, conduct, decisions, kinship, payments, procurement, seals, timing  # noqa: F401  (register the rules)
from . import incidents  # noqa: F401,E402  (XW-07, after the catalogue's rules)
