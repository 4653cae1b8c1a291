"""Stage ``circuits``: circuit-discovery methods scored against a mechanism whose truth we know.

``graph`` (the ACDC edge graph from TransformerLens split hooks) → ``data`` (clean and
corrupt inputs) → ``patching`` (``Experiment``: edge ablation and the shared metric) →
``truth`` (tier 1: compiled structure; tier 2: transported through a run's layer map) →
``methods`` (ACDC, EAP, EAP-IG, EAP-GP, edge pruning, node patching, random) → ``scoring`` (ROC/AUC, faithfulness,
stability, time) → ``benchmark`` (tables and ROC figure).
"""

from workbench.circuits.graph import Graph, build_graph
from workbench.circuits.methods import METHODS, Scores, get_methods
from workbench.circuits.patching import ABLATIONS, Experiment
from workbench.circuits.truth import Truth, tier1, tier2

__all__ = ["ABLATIONS", "Experiment", "Graph", "METHODS", "Scores", "Truth", "build_graph", "get_methods", "tier1",
           "tier2"]
