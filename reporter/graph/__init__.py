"""The module graph: record one real forward pass (record.py), fold repeated blocks and pick
a depth from a node budget (fold.py), lay out nodes, clusters and edges (layout.py), write
DOT and run Graphviz (dot.py); build.py ties them together for the graph stage, and
recolour.py redraws a finished graph by measured time."""
