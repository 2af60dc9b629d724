"""`ax ui`: the dashboard and its JSON API over the same store (SPEC section 10).

The API's bodies are the CLI's `--format json` documents, built by `automatosx.views`; the
pages render those same documents; commands (pause, resume, cancel, approve, reject) go
through the functions the CLI uses. Nothing here keeps state of its own beyond the open
store, the event feed that wakes streams, and the runners it started for `resume`.
"""
