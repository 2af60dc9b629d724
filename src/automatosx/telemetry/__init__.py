"""Telemetry: readers of the store that send what happened to other tools.

`trace` turns an ended execution, as the store holds it (its step instances, every attempt
with its real times, usage and errors, its child executions), into a trace in plain data;
`otel` sends that trace to an OpenTelemetry receiver over OTLP/HTTP when
`AX_OTEL_ENDPOINT` is set (the `otel` extra). Like every reader, it learns the truth from
the store, never from the engine's memory, so what it sends is what `status` shows.
Nothing here is imported unless the setting is there: `import automatosx` stays light.
"""
