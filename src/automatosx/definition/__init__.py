"""What a workflow *is*: schema models, safe loading, validation, graph and templates."""
