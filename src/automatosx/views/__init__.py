"""The read model: the store's records as the JSON documents of SPEC section 7.

One function per document; the CLI prints them (or renders them as tables), and the Python
API and the dashboard serve the same ones, so a shape is defined once. Views read the store
and never change it.
"""
